// swin_trt_plugin_host_test: drives libswin_trt_plugins.so through the entry points and interfaces TensorRT
// uses (getCreators, setLoggerFinder, IPluginCreatorV3One, IPluginV3 capabilities), without TensorRT's
// libraries or a GPU: creator field lists and validation, serialization round trip, clone/attachToContext,
// supportsFormatCombination, getOutputDataTypes, configurePlugin, and getOutputShapes with a dynamic batch
// through a mock IExprBuilder. enqueue's kernels need a GPU (tests/test_cuda_kernels.py covers them); its
// argument checks, which run before any launch, are tested here.
//
// The review's findings each have a test: int8 partition/reverse with two different scales is accepted
// (requantized in the gather: swin_trt_plugin_emulated_test checks the codes), never a failed build;
// every noexcept method survives failing allocations (operator new is replaced below and made to throw);
// sizes whose window products overflow int32 are refused; attention refuses a batch of partial images.
//
// Registration at load (libswin_trt_plugins_autoreg, for hosts that only dlopen): its host-test copy is
// dlopened with RTLD_LOCAL and registers into a registry of this test's own (TestRegistry), which stands for
// TensorRT's: these checks are of swin_trt's registration code and its load-time behaviour, not of TensorRT.
#include "NvInferRuntime.h"

#include "plugin_registrar.h"
#include "plugin_test_support.h"

#include <dlfcn.h>
#include <link.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <new>
#include <string>
#include <vector>

// ---- allocation failure injection: while gFailAllocations is set, every operator new throws -------------
// (The plugin library resolves operator new to this definition: the executable's symbol interposes.)
namespace
{
using swin_test::gFailAllocations;
int gFailedAllocations = 0;

void* allocate(size_t size)
{
    if (gFailAllocations)
    {
        ++gFailedAllocations;
        throw std::bad_alloc();
    }
    void* p = malloc(size == 0 ? 1 : size);
    if (p == nullptr)
    {
        throw std::bad_alloc();
    }
    return p;
}

//! Allocations fail inside the scope (test code must not allocate there: build strings outside).
struct FailingAllocations
{
    FailingAllocations()
    {
        gFailAllocations = true;
    }
    ~FailingAllocations()
    {
        gFailAllocations = false;
    }
};
} // namespace

void* operator new(size_t size)
{
    return allocate(size);
}
void* operator new[](size_t size)
{
    return allocate(size);
}
void operator delete(void* p) noexcept
{
    free(p);
}
void operator delete[](void* p) noexcept
{
    free(p);
}
void operator delete(void* p, size_t) noexcept
{
    free(p);
}
void operator delete[](void* p, size_t) noexcept
{
    free(p);
}

using namespace nvinfer1;
using namespace swin_test;

namespace
{

// ---- a plugin registry of the test's own, for the registration code of libswin_trt_plugins_autoreg ----------
// It implements IPluginRegistry as its documentation says TensorRT's does (registerCreator refuses a second
// creator of the same name, version and namespace; getCreator finds by all three): what is checked below is
// swin_trt's registration code and its load-time behaviour, not TensorRT's registry.
class TestRegistry : public IPluginRegistry
{
public:
    struct Entry
    {
        IPluginCreatorInterface* creator;
        std::string name, version, nameSpace, givenNamespace;
    };

    std::vector<Entry> entries;
    int32_t registerCalls = 0;
    bool refuseAll = false;

    static IPluginCreatorV3One* v3(IPluginCreatorInterface* c)
    {
        return strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0 ? static_cast<IPluginCreatorV3One*>(c)
                                                                                  : nullptr;
    }

    bool registerCreator(IPluginCreatorInterface& creator, AsciiChar const* const pluginNamespace) noexcept override
    {
        ++registerCalls;
        IPluginCreatorV3One* c = v3(&creator);
        if (refuseAll || c == nullptr || getCreator(c->getPluginName(), c->getPluginVersion(), pluginNamespace))
        {
            return false;
        }
        entries.push_back({&creator, c->getPluginName(), c->getPluginVersion(), c->getPluginNamespace(),
            pluginNamespace});
        return true;
    }

    IPluginCreatorInterface* getCreator(AsciiChar const* const pluginName, AsciiChar const* const pluginVersion,
        AsciiChar const* const pluginNamespace) noexcept override
    {
        for (Entry const& e : entries)
        {
            if (e.name == pluginName && e.version == pluginVersion && e.givenNamespace == pluginNamespace)
            {
                return e.creator;
            }
        }
        return nullptr;
    }

    IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }

    bool deregisterCreator(IPluginCreatorInterface const&) noexcept override
    {
        return false;
    }

    void setErrorRecorder(IErrorRecorder* const) noexcept override {}

    IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return nullptr;
    }

    bool isParentSearchEnabled() const override
    {
        return false;
    }

    void setParentSearchEnabled(bool const) override {}

    PluginLibraryHandle loadLibrary(AsciiChar const*) noexcept override
    {
        return nullptr;
    }

    void deregisterLibrary(PluginLibraryHandle) noexcept override {}

    IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override
    {
        return nullptr;
    }

    int32_t releasePluginResource(AsciiChar const*) noexcept override
    {
        return -1;
    }

#if NV_TENSORRT_MAJOR < 11 // IPluginV2-era methods, removed in TensorRT 11: deprecated, yet pure virtual in 10.x
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    bool registerCreator(IPluginCreator&, AsciiChar const* const) noexcept override
    {
        return false;
    }

    IPluginCreator* const* getPluginCreatorList(int32_t* const numCreators) const noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }

    IPluginCreator* getPluginCreator(AsciiChar const* const, AsciiChar const* const, AsciiChar const* const) noexcept
        override
    {
        return nullptr;
    }

    bool deregisterCreator(IPluginCreator const&) noexcept override
    {
        return false;
    }
#pragma GCC diagnostic pop
#else
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }
#endif
};

TestRegistry gRegistry; // what getPluginRegistry() (below) hands to libswin_trt_plugins_autoreg

} // namespace

// libswin_trt_plugins_autoreg_hosttest is linked without libnvinfer: this definition (exported by the test
// executable) is the getPluginRegistry() its load-time registrar calls.
extern "C" __attribute__((visibility("default"))) IPluginRegistry* getPluginRegistry() noexcept
{
    return &gRegistry;
}

namespace
{

void testRegistry()
{
    int32_t n = -1;
    IPluginCreatorInterface* const* list = getCreators(n);
    check(n == 4 && list != nullptr, "getCreators returns 4 creators");
    char const* const names[]
        = {"SwinWindowPartition", "SwinWindowReverse", "SwinWindowAttention", "SwinFusedWindowAttention"};
    for (char const* name : names)
    {
        IPluginCreatorV3One* c = creator(name);
        check(c != nullptr, std::string("creator ") + name);
        if (c == nullptr)
        {
            continue;
        }
        check(strcmp(c->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0, std::string(name) + ": interface kind");
        check(strcmp(c->getPluginVersion(), "1") == 0, std::string(name) + ": version 1");
        check(strcmp(c->getPluginNamespace(), "swin_trt") == 0, std::string(name) + ": namespace swin_trt");
        PluginFieldCollection const* fc = c->getFieldNames();
        bool hasWindow = false;
        for (int32_t k = 0; k < fc->nbFields; ++k)
        {
            hasWindow = hasWindow
                || (strcmp(fc->fields[k].name, "window_size") == 0 && fc->fields[k].type == PluginFieldType::kINT32
                    && fc->fields[k].length == 2);
        }
        check(hasWindow, std::string(name) + ": field window_size INT32[2]");
    }
}

void testPartition()
{
    IPluginCreatorV3One* c = creator("SwinWindowPartition");
    Fields good;
    good.i("window_size", {4, 5}).i("shift_size", {2, 3}).i("pad_first", {1});
    IPluginV3* p = c->createPlugin("part", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "partition: valid fields");
    if (p == nullptr)
    {
        return;
    }
    check(strcmp(core(p)->getPluginName(), "SwinWindowPartition") == 0 && strcmp(core(p)->getPluginNamespace(), "swin_trt") == 0
            && strcmp(core(p)->getPluginVersion(), "1") == 0,
        "partition: core name/namespace/version");
    check(build(p)->getNbOutputs() == 1, "partition: one output");

    // Shapes: x (B dynamic = 3, 9, 13, 8) -> (B * nW, N, C), nW = ceil(9/4) * ceil(13/5) = 3 * 3.
    MockBuilder eb;
    DimsExprs in{};
    in.nbDims = 4;
    in.d[0] = eb.mImplObject.make(false, 3);
    in.d[1] = eb.constant(9);
    in.d[2] = eb.constant(13);
    in.d[3] = eb.constant(8);
    DimsExprs out{};
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0, "partition: getOutputShapes");
    check(out.nbDims == 3 && !out.d[0]->isConstant() && valueOf(out.d[0]) == 27 && out.d[1]->isConstant()
            && out.d[1]->getConstantValue() == 20 && valueOf(out.d[2]) == 8,
        "partition: output (B*9, 20, 8) with dynamic B");
    // Any size: symbolic H and W give d0 = B * ceil(H / wh) * ceil(W / ww) as an expression.
    in.d[1] = symbolic(eb, 10);
    in.d[2] = symbolic(eb, 21);
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0 && !out.d[0]->isConstant()
            && valueOf(out.d[0]) == 3 * 3 * 5 && out.d[1]->getConstantValue() == 20 && valueOf(out.d[2]) == 8,
        "partition: symbolic H, W: output (B * ceil(H/4) * ceil(W/5), 20, C)");
    in.d[2] = eb.constant(13);
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0 && !out.d[0]->isConstant()
            && valueOf(out.d[0]) == 27,
        "partition: symbolic H with a static W");
    {
        // The optimization profile's ends are checked in configurePlugin (the build-time dims are -1).
        DynamicPluginTensorDesc any = ranged(DataType::kHALF, {-1, -1, -1, 8}, {1, 4, 5, 8}, {8, 1024, 2048, 8});
        DynamicPluginTensorDesc anyOut = desc(DataType::kHALF, {-1, 20, 8});
        check(build(p)->configurePlugin(&any, 1, &anyOut, 1) == 0, "partition: configurePlugin with a H x W profile");
        DynamicPluginTensorDesc huge = ranged(DataType::kHALF, {-1, -1, -1, 8}, {1, 4, 5, 8}, {8, 1 << 25, 64, 8});
        gLogger.messages.clear();
        check(build(p)->configurePlugin(&huge, 1, &anyOut, 1) != 0 && gLogger.saw("profile's maximum")
                && gLogger.saw("2^24"),
            "partition: a profile whose maximum H exceeds 2^24 is refused, naming the maximum");
    }

    // Formats.
    for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8})
    {
        DynamicPluginTensorDesc io[2] = {desc(t, {-1, 9, 13, 8}), desc(t, {-1, 20, 8})};
        check(build(p)->supportsFormatCombination(0, io, 1, 1) && build(p)->supportsFormatCombination(1, io, 1, 1),
            "partition: supports float32/float16/int8 linear");
    }
    {
        DynamicPluginTensorDesc io[2] = {desc(DataType::kINT32, {-1, 9, 13, 8}), desc(DataType::kINT32, {-1, 20, 8})};
        check(!build(p)->supportsFormatCombination(0, io, 1, 1), "partition: refuses int32");
        DynamicPluginTensorDesc mixed[2] = {desc(DataType::kHALF, {-1, 9, 13, 8}), desc(DataType::kFLOAT, {-1, 20, 8})};
        check(!build(p)->supportsFormatCombination(1, mixed, 1, 1), "partition: output type must match");
        DynamicPluginTensorDesc chw[2]
            = {desc(DataType::kHALF, {-1, 9, 13, 8}, TensorFormat::kCHW2), desc(DataType::kHALF, {-1, 20, 8})};
        check(!build(p)->supportsFormatCombination(0, chw, 1, 1), "partition: linear only");
    }
    DataType outType = DataType::kFLOAT;
    DataType const inType = DataType::kINT8;
    check(build(p)->getOutputDataTypes(&outType, 1, &inType, 1) == 0 && outType == DataType::kINT8,
        "partition: output type = input type");
    DynamicPluginTensorDesc cin = desc(DataType::kHALF, {-1, 9, 13, 8});
    DynamicPluginTensorDesc cout = desc(DataType::kHALF, {-1, 20, 8});
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) == 0, "partition: configurePlugin");
    checkRoundTrip(c, p, "partition");
    delete p;

    // Validation: missing or out-of-range fields -> nullptr with a message naming the attribute.
    struct
    {
        std::vector<int32_t> window, shift, padFirst;
        char const* expect;
    } const bad[] = {{{7, 7}, {7, 0}, {1}, "shift_size"}, {{0, 7}, {0, 0}, {1}, "window_size"},
        {{7, 7}, {0, 0}, {2}, "pad_first"}, {{7}, {0, 0}, {1}, "window_size"}};
    for (auto const& b : bad)
    {
        Fields f;
        f.i("window_size", b.window).i("shift_size", b.shift).i("pad_first", b.padFirst);
        gLogger.messages.clear();
        IPluginV3* q = c->createPlugin("bad", f.get(), TensorRTPhase::kBUILD);
        check(q == nullptr && gLogger.saw(b.expect), std::string("partition: refuses bad ") + b.expect);
        delete q;
    }
    Fields missing;
    missing.i("window_size", {7, 7}).i("shift_size", {3, 3});
    gLogger.messages.clear();
    IPluginV3* q = c->createPlugin("missing", missing.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw("'pad_first' is missing"), "partition: missing pad_first");
    delete q;
}

void testReverse()
{
    IPluginCreatorV3One* c = creator("SwinWindowReverse");
    Fields good;
    good.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {0}).i("height", {14}).i("width", {20});
    IPluginV3* p = c->createPlugin("rev", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "reverse: valid fields");
    if (p == nullptr)
    {
        return;
    }
    // windows (B * nW dynamic, 49, 96) with nW = 2 * 3 = 6 and B = 5 -> (B, 14, 20, 96).
    MockBuilder eb;
    DimsExprs in{};
    in.nbDims = 3;
    in.d[0] = eb.mImplObject.make(false, 30);
    in.d[1] = eb.constant(49);
    in.d[2] = eb.constant(96);
    DimsExprs out{};
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0, "reverse: getOutputShapes");
    check(out.nbDims == 4 && !out.d[0]->isConstant() && valueOf(out.d[0]) == 5 && out.d[1]->getConstantValue() == 14
            && out.d[2]->getConstantValue() == 20 && valueOf(out.d[3]) == 96,
        "reverse: output (B, 14, 20, 96) with dynamic B");
    in.d[1] = eb.constant(48);
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) != 0, "reverse: wrong N refused");
    DynamicPluginTensorDesc cin = desc(DataType::kFLOAT, {-1, 49, 96});
    DynamicPluginTensorDesc cout = desc(DataType::kFLOAT, {-1, 14, 20, 96});
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) == 0, "reverse: configurePlugin");
    cin = desc(DataType::kFLOAT, {7, 49, 96});
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) != 0, "reverse: dim 0 not a multiple of nW refused");
    checkRoundTrip(c, p, "reverse");
    delete p;

    Fields bad;
    bad.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {0}).i("height", {0}).i("width", {20});
    gLogger.messages.clear();
    IPluginV3* q = c->createPlugin("bad", bad.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw("'height'"), "reverse: refuses height 0");
    delete q;
}

//! Reverse without height/width takes its size from input 1, the feature map (dims only).
void testReverseAnySize()
{
    IPluginCreatorV3One* c = creator("SwinWindowReverse");
    Fields fields;
    fields.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1});
    IPluginV3* p = c->createPlugin("rev_any", fields.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "reverse any size: created without height/width");
    if (p == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs in[2]{};
    in[0].nbDims = 3;
    in[0].d[0] = symbolic(eb, 5 * 2 * 3);
    in[0].d[1] = eb.constant(49);
    in[0].d[2] = eb.constant(96);
    in[1].nbDims = 4;
    in[1].d[0] = symbolic(eb, 5);
    in[1].d[1] = symbolic(eb, 14);
    in[1].d[2] = symbolic(eb, 20);
    in[1].d[3] = eb.constant(96);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 4
            && out.d[0] == in[1].d[0] && out.d[1] == in[1].d[1] && out.d[2] == in[1].d[2] && out.d[3] == in[0].d[2],
        "reverse any size: output (fm.B, fm.H, fm.W, windows.C), the feature map's expressions passed through");
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 1, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("2 inputs"),
        "reverse any size: one input (no size source) is refused, saying what it needs");
    in[1].nbDims = 3;
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0, "reverse any size: a 3-D feature map refused");

    // Formats: the feature map may be float32, float16 or int8, whatever the windows are; never another format.
    DynamicPluginTensorDesc io[3] = {desc(DataType::kINT8, {-1, 49, 96}), desc(DataType::kFLOAT, {-1, -1, -1, 96}),
        desc(DataType::kINT8, {-1, -1, -1, 96})};
    check(build(p)->supportsFormatCombination(0, io, 2, 1) && build(p)->supportsFormatCombination(1, io, 2, 1)
            && build(p)->supportsFormatCombination(2, io, 2, 1),
        "reverse any size: int8 windows with a float32 feature map");
    io[1] = desc(DataType::kINT8, {-1, -1, -1, 96});
    io[0] = desc(DataType::kHALF, {-1, 49, 96});
    io[2] = desc(DataType::kHALF, {-1, -1, -1, 96});
    check(build(p)->supportsFormatCombination(1, io, 2, 1) && build(p)->supportsFormatCombination(2, io, 2, 1),
        "reverse any size: float16 windows with an int8 feature map");
    io[1] = desc(DataType::kINT32, {-1, -1, -1, 96});
    check(!build(p)->supportsFormatCombination(1, io, 2, 1), "reverse any size: an int32 feature map refused");
    io[1] = desc(DataType::kHALF, {-1, -1, -1, 96}, TensorFormat::kCHW2);
    check(!build(p)->supportsFormatCombination(1, io, 2, 1), "reverse any size: feature map kLINEAR only");
    io[2] = desc(DataType::kFLOAT, {-1, -1, -1, 96});
    check(!build(p)->supportsFormatCombination(2, io, 2, 1), "reverse any size: output type follows the windows");
    check(!build(p)->supportsFormatCombination(0, io, 1, 1), "reverse any size: not with one input");

    DynamicPluginTensorDesc cin[2] = {ranged(DataType::kFLOAT, {-1, 49, 96}, {4, 49, 96}, {512, 49, 96}),
        ranged(DataType::kFLOAT, {-1, -1, -1, 96}, {1, 8, 8, 96}, {8, 56, 70, 96})};
    DynamicPluginTensorDesc cout = desc(DataType::kFLOAT, {-1, -1, -1, 96});
    check(build(p)->configurePlugin(cin, 2, &cout, 1) == 0, "reverse any size: configurePlugin with a profile");
    cin[1] = ranged(DataType::kFLOAT, {-1, -1, -1, 96}, {1, 8, 8, 96}, {8, 1 << 25, 70, 96});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(cin, 2, &cout, 1) != 0 && gLogger.saw("feature_map") && gLogger.saw("2^24"),
        "reverse any size: a profile maximum beyond 2^24 refused");

    // enqueue derives nW from the feature map and checks dim 0 == B * nW before launching (no GPU needed).
    PluginTensorDesc run[2] = {plainDesc(DataType::kFLOAT, {7, 49, 8}), plainDesc(DataType::kFLOAT, {2, 14, 14, 8})};
    PluginTensorDesc runOut = plainDesc(DataType::kFLOAT, {2, 14, 14, 8});
    float buffer[8] = {};
    void const* inputs[] = {buffer, buffer};
    void* outputs[] = {buffer};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(run, &runOut, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("B * nW = 2 * 4"),
        "reverse any size: enqueue refuses 7 rows for 2 images of 4 windows");
    checkRoundTrip(c, p, "reverse any size");
    delete p;

    // A node with height/width takes one input: a feature map as well would be two size sources.
    Fields sized;
    sized.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).i("height", {14}).i("width", {20});
    IPluginV3* q = c->createPlugin("rev_sized", sized.get(), TensorRTPhase::kBUILD);
    in[1].nbDims = 4;
    gLogger.messages.clear();
    check(q != nullptr && build(q)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("1 input"),
        "reverse: height/width and a feature map (two size sources) refused");
    delete q;
    Fields half;
    half.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).i("height", {14});
    gLogger.messages.clear();
    q = c->createPlugin("rev_half", half.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw("'width' = 0"), "reverse: height without width refused");
    delete q;
}

void testAttention()
{
    IPluginCreatorV3One* c = creator("SwinWindowAttention");
    Fields good;
    good.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {14});
    good.f("scale", 0.17677669F);
    IPluginV3* p = c->createPlugin("attn", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention: valid fields");
    if (p == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs in[2]{};
    in[0].nbDims = 3;
    in[0].d[0] = eb.mImplObject.make(false, 8);
    in[0].d[1] = eb.constant(49);
    in[0].d[2] = eb.constant(288);
    in[1].nbDims = 2;
    in[1].d[0] = eb.constant(169);
    in[1].d[1] = eb.constant(3);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) == 0, "attention: getOutputShapes");
    check(out.nbDims == 3 && !out.d[0]->isConstant() && valueOf(out.d[0]) == 8 && out.d[1]->getConstantValue() == 49
            && out.d[2]->isConstant() && out.d[2]->getConstantValue() == 96,
        "attention: output (rows, 49, 96)");
    DynamicPluginTensorDesc ok[3]
        = {desc(DataType::kHALF, {-1, 49, 288}), desc(DataType::kFLOAT, {169, 3}), desc(DataType::kHALF, {-1, 49, 96})};
    check(build(p)->supportsFormatCombination(0, ok, 2, 1) && build(p)->supportsFormatCombination(1, ok, 2, 1)
            && build(p)->supportsFormatCombination(2, ok, 2, 1),
        "attention: float16 qkv with float32 bias");
    DynamicPluginTensorDesc i8[3]
        = {desc(DataType::kINT8, {-1, 49, 288}), desc(DataType::kFLOAT, {169, 3}), desc(DataType::kINT8, {-1, 49, 96})};
    check(!build(p)->supportsFormatCombination(0, i8, 2, 1), "attention: int8 refused");
    check(build(p)->configurePlugin(ok, 2, ok + 2, 1) == 0, "attention: configurePlugin");
    DynamicPluginTensorDesc wrongBias[3]
        = {desc(DataType::kHALF, {-1, 49, 288}), desc(DataType::kFLOAT, {169, 4}), desc(DataType::kHALF, {-1, 49, 96})};
    check(build(p)->configurePlugin(wrongBias, 2, wrongBias + 2, 1) != 0, "attention: wrong bias table refused");
    DynamicPluginTensorDesc bigHead[3] = {desc(DataType::kHALF, {-1, 49, 3 * 3 * 160}), desc(DataType::kFLOAT, {169, 3}),
        desc(DataType::kHALF, {-1, 49, 3 * 160})};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bigHead, 2, bigHead + 2, 1) != 0 && gLogger.saw("head_dim"),
        "attention: head_dim 160 refused with a message");
    checkRoundTrip(c, p, "attention");
    delete p;

    struct
    {
        int32_t heads, wh, ww, height;
        float scale;
        char const* expect;
    } const bad[] = {{0, 7, 7, 14, 0.1F, "num_heads"}, {3, 7, 7, 15, 0.1F, "height"}, {3, 7, 7, 14, 0.0F, "scale"},
        {3, 23, 23, 23, 0.1F, "window_size"}};
    for (auto const& b : bad)
    {
        Fields f;
        f.i("num_heads", {b.heads}).i("window_size", {b.wh, b.ww}).i("shift_size", {0, 0}).i("height", {b.height});
        f.i("width", {b.ww * 2}).f("scale", b.scale);
        gLogger.messages.clear();
        IPluginV3* q = c->createPlugin("bad", f.get(), TensorRTPhase::kBUILD);
        check(q == nullptr && gLogger.saw(b.expect), std::string("attention: refuses bad ") + b.expect);
        delete q;
    }
}

PluginTensorDesc plainDesc(DataType type, std::vector<int64_t> dims, float scale = -1.0F)
{
    PluginTensorDesc d = desc(type, std::move(dims)).desc;
    d.scale = scale;
    return d;
}

//! Attention without height/width: a shifted node takes its grid from input 2 (the feature map, dims only);
//! an unshifted one needs none.
void testAttentionAnySize()
{
    IPluginCreatorV3One* c = creator("SwinWindowAttention");
    Fields shifted;
    shifted.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).f("scale", 0.17677669F);
    IPluginV3* p = c->createPlugin("attn_any", shifted.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention any size: shifted node created without height/width");
    if (p == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs in[3]{};
    in[0].nbDims = 3;
    in[0].d[0] = symbolic(eb, 2 * 6);
    in[0].d[1] = eb.constant(49);
    in[0].d[2] = eb.constant(288);
    in[1].nbDims = 2;
    in[1].d[0] = eb.constant(169);
    in[1].d[1] = eb.constant(3);
    in[2].nbDims = 4;
    in[2].d[0] = symbolic(eb, 2);
    in[2].d[1] = symbolic(eb, 10);
    in[2].d[2] = symbolic(eb, 20);
    in[2].d[3] = eb.constant(96);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) == 0 && out.d[0] == in[0].d[0]
            && out.d[2]->getConstantValue() == 96,
        "attention any size: output (rows, N, C) with a feature map");
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("3 inputs"),
        "attention any size: a shifted node without height/width or feature map refused");
    DynamicPluginTensorDesc io[4] = {desc(DataType::kHALF, {-1, 49, 288}), desc(DataType::kFLOAT, {169, 3}),
        desc(DataType::kINT8, {-1, -1, -1, 96}), desc(DataType::kHALF, {-1, 49, 96})};
    check(build(p)->supportsFormatCombination(2, io, 3, 1) && build(p)->supportsFormatCombination(3, io, 3, 1)
            && build(p)->supportsFormatCombination(0, io, 3, 1),
        "attention any size: an int8 feature map beside float16 qkv");
    io[2] = desc(DataType::kBOOL, {-1, -1, -1, 96});
    check(!build(p)->supportsFormatCombination(2, io, 3, 1), "attention any size: a bool feature map refused");

    DynamicPluginTensorDesc cfg[4] = {ranged(DataType::kHALF, {-1, 49, 288}, {4, 49, 288}, {640, 49, 288}),
        desc(DataType::kFLOAT, {169, 3}), ranged(DataType::kHALF, {-1, -1, -1, 96}, {1, 14, 14, 96}, {8, 70, 77, 96}),
        desc(DataType::kHALF, {-1, 49, 96})};
    check(build(p)->configurePlugin(cfg, 3, cfg + 3, 1) == 0, "attention any size: configurePlugin with a profile");
    cfg[2] = ranged(DataType::kHALF, {-1, -1, -1, 96}, {1, 14, 14, 96}, {8, 70, 1 << 25, 96});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(cfg, 3, cfg + 3, 1) != 0 && gLogger.saw("profile's maximum"),
        "attention any size: a profile maximum beyond 2^24 refused");

    // enqueue: grid = the feature map rounded up to the window (10 x 20 -> 14 x 21: 2 x 3 windows), and
    // rows == B * nW, checked before launching.
    PluginTensorDesc run[3] = {plainDesc(DataType::kHALF, {11, 49, 288}), plainDesc(DataType::kFLOAT, {169, 3}),
        plainDesc(DataType::kFLOAT, {2, 10, 20, 96})};
    PluginTensorDesc runOut = plainDesc(DataType::kHALF, {11, 49, 96});
    uint16_t buffer[8] = {};
    void const* inputs[] = {buffer, buffer, buffer};
    void* outputs[] = {buffer};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(run, &runOut, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("B * nW = 2 * 6")
            && gLogger.saw("grid 14x21"),
        "attention any size: enqueue refuses 11 rows for 2 images of 6 windows");
    checkRoundTrip(c, p, "attention any size");
    delete p;

    // Unshifted and without a size: no mask, two inputs; a feature map would be a size nobody reads.
    Fields plain;
    plain.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {0, 0}).f("scale", 0.17677669F);
    IPluginV3* q = c->createPlugin("attn_plain", plain.get(), TensorRTPhase::kBUILD);
    check(q != nullptr && build(q)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) == 0,
        "attention: an unshifted node needs no size");
    DynamicPluginTensorDesc two[3] = {desc(DataType::kHALF, {7, 49, 288}), desc(DataType::kFLOAT, {169, 3}),
        desc(DataType::kHALF, {7, 49, 96})};
    check(q != nullptr && build(q)->configurePlugin(two, 2, two + 2, 1) == 0,
        "attention: an unshifted node without a size takes any number of windows");
    gLogger.messages.clear();
    check(q != nullptr && build(q)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("2 inputs"),
        "attention: an unshifted node without a size refuses a feature map");
    delete q;
    Fields sized;
    sized.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {21});
    sized.f("scale", 0.17677669F);
    q = c->createPlugin("attn_sized", sized.get(), TensorRTPhase::kBUILD);
    gLogger.messages.clear();
    check(q != nullptr && build(q)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("2 inputs"),
        "attention: height/width and a feature map (two size sources) refused");
    delete q;
}

std::vector<std::string> gReports;

void keepReport(char const* message)
{
    gReports.emplace_back(message);
}

bool reported(char const* needle)
{
    for (std::string const& r : gReports)
    {
        if (r.find(needle) != std::string::npos)
        {
            return true;
        }
    }
    return false;
}

//! libswin_trt_plugins_autoreg registers the four creators when a host dlopens it (Triton: RTLD_NOW |
//! RTLD_LOCAL), once, in namespace swin_trt, version 1. The library under test is the registering library's
//! host-test copy (same objects, getPluginRegistry() from this executable); the registry is TestRegistry
//! above. This checks swin_trt's registration code and its load-time behaviour, not TensorRT.
void testRegistrationAtLoad()
{
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    check(gRegistry.entries.empty(), "autoreg: nothing registered before the library is loaded");
    void* handle = dlopen(SWIN_TRT_AUTOREG_TEST_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, std::string("autoreg: dlopen(RTLD_NOW | RTLD_LOCAL) loads the library: ")
            + (handle == nullptr ? dlerror() : "ok"));
    if (handle == nullptr)
    {
        return;
    }
    check(gRegistry.entries.size() == 4 && gRegistry.registerCalls == 4, "autoreg: four creators registered at load");
    char const* const names[]
        = {"SwinWindowPartition", "SwinWindowReverse", "SwinWindowAttention", "SwinFusedWindowAttention"};
    for (int32_t i = 0; i < 4 && i < count && gRegistry.entries.size() == 4; ++i)
    {
        TestRegistry::Entry const& e = gRegistry.entries[static_cast<size_t>(i)];
        check(e.creator == creators[i] && e.name == names[i] && e.version == "1" && e.nameSpace == "swin_trt"
                && e.givenNamespace == "swin_trt",
            std::string("autoreg: ") + names[i] + " registered as the library's own creator, version 1, namespace "
                "swin_trt");
        check(gRegistry.getCreator(names[i], "1", "swin_trt") == creators[i],
            std::string("autoreg: ") + names[i] + " found by (name, \"1\", \"swin_trt\")");
    }
    // A second dlopen (a second model of the same Triton server) runs no constructor: nothing new.
    void* again = dlopen(SWIN_TRT_AUTOREG_TEST_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    check(again == handle && gRegistry.registerCalls == 4, "autoreg: loading again registers nothing twice");
    // Linked with -z nodelete: after every dlclose the library (and the creators the registry holds) stay.
    dlclose(again);
    dlclose(handle);
    check(dlopen(SWIN_TRT_AUTOREG_TEST_LIBRARY, RTLD_NOW | RTLD_NOLOAD) != nullptr,
        "autoreg: still loaded after dlclose (-z nodelete): the registered creators stay valid");
}

//! The registration code on its own (plugin_registrar.cpp): what it does with a registry that already knows the
//! creators, one that holds another library's, and one that refuses. Again our code, not TensorRT's registry.
void testRegistrarGuards()
{
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    TestRegistry registry;
    gReports.clear();
    check(swin_trt::plugin::registerCreators(registry, creators, count, keepReport) == 4 && registry.entries.size() == 4,
        "registrar: registers the four creators");
    check(swin_trt::plugin::registerCreators(registry, creators, count, keepReport) == 0 && registry.registerCalls == 4
            && gReports.empty(),
        "registrar: the same creators again (loadLibrary came first): skipped quietly, nothing registered twice");

    // Another copy of the library (another path) registered its own partition creator first: that one stays.
    TestRegistry other;
    IPluginCreatorV3One* partition = creator("SwinWindowPartition");
    struct ForeignCreator : public IPluginCreatorV3One
    {
        IPluginCreatorV3One* inner;
        explicit ForeignCreator(IPluginCreatorV3One* c)
            : inner(c)
        {
        }
        IPluginV3* createPlugin(AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase phase) noexcept
            override
        {
            return inner->createPlugin(name, fc, phase);
        }
        PluginFieldCollection const* getFieldNames() noexcept override
        {
            return inner->getFieldNames();
        }
        AsciiChar const* getPluginName() const noexcept override
        {
            return inner->getPluginName();
        }
        AsciiChar const* getPluginVersion() const noexcept override
        {
            return inner->getPluginVersion();
        }
        AsciiChar const* getPluginNamespace() const noexcept override
        {
            return inner->getPluginNamespace();
        }
    } foreign(partition);
    other.registerCreator(foreign, "swin_trt");
    gReports.clear();
    check(swin_trt::plugin::registerCreators(other, creators, count, keepReport) == 3
            && other.getCreator("SwinWindowPartition", "1", "swin_trt") == &foreign
            && reported("SwinWindowPartition (swin_trt, version 1): another library registered"),
        "registrar: a creator another library registered stays, and that is reported by name");

    TestRegistry refusing;
    refusing.refuseAll = true;
    gReports.clear();
    check(swin_trt::plugin::registerCreators(refusing, creators, count, keepReport) == 0 && gReports.size() == 4
            && reported("refused"),
        "registrar: a registry that refuses: each creator reported");
    gReports.clear();
    check(swin_trt::plugin::registerCreators(registry, nullptr, 3, keepReport) == -1 && !gReports.empty(),
        "registrar: no creator list is an error, reported");
}

//! Cosine mode (Swin V2): the fields `cosine` and `head_scale`, their rules, and their serialization.
void testAttentionCosineFields()
{
    IPluginCreatorV3One* c = creator("SwinWindowAttention");
    PluginFieldCollection const* names = c->getFieldNames();
    bool cosineField = false;
    bool headScaleField = false;
    for (int32_t k = 0; k < names->nbFields; ++k)
    {
        cosineField = cosineField
            || (strcmp(names->fields[k].name, "cosine") == 0 && names->fields[k].type == PluginFieldType::kINT32);
        headScaleField = headScaleField
            || (strcmp(names->fields[k].name, "head_scale") == 0 && names->fields[k].type == PluginFieldType::kFLOAT32);
    }
    check(cosineField && headScaleField, "attention: creator lists cosine (INT32) and head_scale (FLOAT32)");

    Fields good;
    good.i("num_heads", {3}).i("window_size", {8, 8}).i("shift_size", {4, 4}).f("scale", 1.0F).i("cosine", {1});
    good.fs("head_scale", {2.5F, 17.0F, 100.0F});
    IPluginV3* p = c->createPlugin("cosine", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention cosine: valid fields (any size, shifted)");
    if (p != nullptr)
    {
        PluginFieldCollection const* fields = runtime(p)->getFieldsToSerialize();
        bool serialized = false;
        for (int32_t k = 0; k < fields->nbFields; ++k)
        {
            PluginField const& f = fields->fields[k];
            if (strcmp(f.name, "head_scale") == 0 && f.length == 3 && f.type == PluginFieldType::kFLOAT32)
            {
                serialized = static_cast<float const*>(f.data)[1] == 17.0F;
            }
        }
        check(serialized, "attention cosine: head_scale serialized, all three values");
        checkRoundTrip(c, p, "attention cosine");
        delete p;
    }
    // A V1 node (no cosine) serializes the six fields it always had: plans of V1 graphs do not change.
    Fields v1;
    v1.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {14});
    v1.f("scale", 0.17677669F);
    IPluginV3* q = c->createPlugin("v1", v1.get(), TensorRTPhase::kBUILD);
    check(q != nullptr && runtime(q)->getFieldsToSerialize()->nbFields == 6,
        "attention V1: no cosine fields serialized");
    delete q;
    Fields explicitV1;
    explicitV1.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {0, 0}).f("scale", 0.2F).i("cosine", {0});
    q = c->createPlugin("v1_explicit", explicitV1.get(), TensorRTPhase::kBUILD);
    check(q != nullptr, "attention: cosine = 0 is V1");
    delete q;

    struct
    {
        std::vector<int32_t> cosine;
        std::vector<float> headScale;
        float scale;
        char const* expect;
    } const bad[] = {{{1}, {}, 1.0F, "cosine = 1 needs attribute 'head_scale'"},
        {{1}, {2.0F, 3.0F}, 1.0F, "expected num_heads = 3"}, {{1}, {2.0F, 0.0F, 3.0F}, 1.0F, "'head_scale'[1]"},
        {{1}, {2.0F, 3.0F, -1.0F}, 1.0F, "'head_scale'[2]"}, {{1}, {100.5F, 3.0F, 4.0F}, 1.0F, "'head_scale'[0]"},
        {{1}, {NAN, 3.0F, 4.0F}, 1.0F, "'head_scale'[0]"}, {{1}, {INFINITY, 3.0F, 4.0F}, 1.0F, "<= 100"},
        {{2}, {2.0F, 3.0F, 4.0F}, 1.0F, "'cosine' = 2"}, {{0}, {2.0F, 3.0F, 4.0F}, 1.0F, "'cosine' is 0"},
        {{1}, {2.0F, 3.0F, 4.0F}, 0.125F, "must be 1.0"}};
    for (auto const& b : bad)
    {
        Fields f;
        f.i("num_heads", {3}).i("window_size", {8, 8}).i("shift_size", {4, 4}).f("scale", b.scale).i("cosine", b.cosine);
        if (!b.headScale.empty())
        {
            f.fs("head_scale", b.headScale);
        }
        gLogger.messages.clear();
        IPluginV3* r = c->createPlugin("bad_cosine", f.get(), TensorRTPhase::kBUILD);
        check(r == nullptr && gLogger.saw(b.expect), std::string("attention cosine: refused with '") + b.expect + "'");
        delete r;
    }
    Fields many;
    many.i("num_heads", {257}).i("window_size", {8, 8}).i("shift_size", {0, 0}).f("scale", 1.0F).i("cosine", {1});
    many.fs("head_scale", std::vector<float>(257, 10.0F));
    gLogger.messages.clear();
    IPluginV3* r = c->createPlugin("many_heads", many.get(), TensorRTPhase::kBUILD);
    check(r == nullptr && gLogger.saw("1 to 256 heads"), "attention cosine: more than 256 heads refused");
    delete r;
}

//! Findings: int8 partition/reverse copied codes unchanged even when a weakly typed 10.x build gave input and
//! output different scales; then configurePlugin refused that case (-1) after supportsFormatCombination had
//! offered int8, which aborts the build. Now every case is accepted (the kernels requantize: checked against
//! the contract by swin_trt_plugin_emulated_test), and only a type change is refused.
void testInt8Scales()
{
    Fields pf;
    pf.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1});
    Fields rf;
    rf.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).i("height", {14}).i("width", {14});
    IPluginV3* partition = creator("SwinWindowPartition")->createPlugin("p", pf.get(), TensorRTPhase::kBUILD);
    IPluginV3* reverse = creator("SwinWindowReverse")->createPlugin("r", rf.get(), TensorRTPhase::kBUILD);
    check(partition != nullptr && reverse != nullptr, "int8 scales: plugins created");
    if (partition == nullptr || reverse == nullptr)
    {
        return;
    }
    struct
    {
        IPluginV3* plugin;
        std::vector<int64_t> in, out;
        char const* name;
    } const ops[] = {{partition, {2, 14, 14, 8}, {8, 49, 8}, "partition"}, {reverse, {8, 49, 8}, {2, 14, 14, 8}, "reverse"}};
    int8_t buffer[2 * 14 * 14 * 8] = {};
    void const* inputs[] = {buffer};
    void* outputs[] = {buffer};
    for (auto const& op : ops)
    {
        std::string const name = op.name;
        struct
        {
            DataType type;
            float inScale, outScale;
        } const cases[] = {{DataType::kINT8, 0.1F, 0.2F}, {DataType::kINT8, 0.2F, 0.1F}, {DataType::kINT8, 0.1F, 0.1F},
            {DataType::kINT8, -1.0F, -1.0F}, {DataType::kINT8, 0.1F, -1.0F}, {DataType::kINT8, 1e-30F, 1e30F},
            {DataType::kINT8, 1e30F, 1e-30F}, {DataType::kHALF, 0.1F, 0.2F}};
        for (auto const& c : cases)
        {
            std::string const what = name + " type " + std::to_string(static_cast<int>(c.type)) + " scales "
                + std::to_string(c.inScale) + " -> " + std::to_string(c.outScale);
            DynamicPluginTensorDesc io[2] = {desc(c.type, op.in), desc(c.type, op.out)};
            io[0].desc.scale = c.inScale;
            io[1].desc.scale = c.outScale;
            gLogger.messages.clear();
            check(build(op.plugin)->supportsFormatCombination(0, io, 1, 1)
                    && build(op.plugin)->supportsFormatCombination(1, io, 1, 1),
                what + ": supportsFormatCombination offers it");
            check(build(op.plugin)->configurePlugin(&io[0], 1, &io[1], 1) == 0 && gLogger.messages.empty(),
                what + ": configurePlugin accepts it (no error: the build goes on)");
            check(runtime(op.plugin)->onShapeChange(&io[0].desc, 1, &io[1].desc, 1) == 0, what + ": onShapeChange");
        }
        // A type change is still refused (TensorRT never asks for one: getOutputDataTypes gives input 0's).
        DynamicPluginTensorDesc in = desc(DataType::kINT8, op.in);
        DynamicPluginTensorDesc out = desc(DataType::kHALF, op.out);
        check(build(op.plugin)->configurePlugin(&in, 1, &out, 1) != 0
                && runtime(op.plugin)->enqueue(&in.desc, &out.desc, inputs, outputs, nullptr, nullptr) != 0,
            name + ": int8 -> float16 refused before any launch");
    }
    delete partition;
    delete reverse;
}

//! Finding: noexcept methods allocated outside try (getFieldsToSerialize's emplace_back, error strings in
//! getOutputShapes/configurePlugin/enqueue), so std::bad_alloc would call std::terminate. With every
//! allocation failing, each method must return its failure value (or its fields) and the test survive.
void testNoexceptMethodsSurviveFailingAllocations()
{
    Fields pf;
    pf.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1});
    Fields af;
    af.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {14});
    af.f("scale", 0.17677669F);
    IPluginCreatorV3One* partitionCreator = creator("SwinWindowPartition");
    IPluginCreatorV3One* attentionCreator = creator("SwinWindowAttention");
    IPluginV3* partition = partitionCreator->createPlugin("p", pf.get(), TensorRTPhase::kBUILD);
    IPluginV3* attention = attentionCreator->createPlugin("a", af.get(), TensorRTPhase::kBUILD);
    check(partition != nullptr && attention != nullptr, "allocation failure: plugins created");
    if (partition == nullptr || attention == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs bad3d{};
    bad3d.nbDims = 3;
    bad3d.d[0] = eb.constant(2);
    bad3d.d[1] = eb.constant(14);
    bad3d.d[2] = eb.constant(8);
    DimsExprs out{};
    DynamicPluginTensorDesc badIn = desc(DataType::kFLOAT, {2, 0, 14, 8});
    DynamicPluginTensorDesc badOut = desc(DataType::kFLOAT, {8, 49, 8});
    PluginTensorDesc badQkv[2] = {plainDesc(DataType::kFLOAT, {7, 49, 288}), plainDesc(DataType::kFLOAT, {169, 3})};
    PluginTensorDesc badX = plainDesc(DataType::kFLOAT, {2, 14, 14});
    PluginTensorDesc outDesc = plainDesc(DataType::kFLOAT, {8, 49, 8});
    float buffer[16] = {};
    void const* inputs[] = {buffer, buffer};
    void* outputs[] = {buffer};
    Fields missing;
    missing.i("window_size", {7, 7});

    int32_t shapes = 0;
    int32_t configured = 0;
    int32_t partitionEnqueued = 0;
    int32_t attentionEnqueued = 0;
    int32_t dataTypes = 0;
    PluginFieldCollection const* fields = nullptr;
    IPluginV3* created = nullptr;
    IPluginV3* cloned = nullptr;
    DataType outType = DataType::kFLOAT;
    DataType const inType = DataType::kFLOAT;
    gFailedAllocations = 0;
    {
        FailingAllocations guard;
        fields = runtime(partition)->getFieldsToSerialize();
        shapes = build(partition)->getOutputShapes(&bad3d, 1, nullptr, 0, &out, 1, eb);
        configured = build(partition)->configurePlugin(&badIn, 1, &badOut, 1);
        partitionEnqueued = runtime(partition)->enqueue(&badX, &outDesc, inputs, outputs, nullptr, nullptr);
        attentionEnqueued = runtime(attention)->enqueue(badQkv, &outDesc, inputs, outputs, nullptr, nullptr);
        dataTypes = build(partition)->getOutputDataTypes(&outType, 2, &inType, 1);
        created = partitionCreator->createPlugin("missing", missing.get(), TensorRTPhase::kBUILD);
        cloned = partition->clone();
    }
    check(gFailedAllocations > 0, "allocation failure: allocations were attempted and failed");
    check(fields != nullptr && fields->nbFields == 3 && strcmp(fields->fields[0].name, "window_size") == 0,
        "allocation failure: getFieldsToSerialize allocates nothing");
    check(shapes == -1, "allocation failure: getOutputShapes returns -1");
    check(configured == -1, "allocation failure: configurePlugin returns -1");
    check(partitionEnqueued == -1 && attentionEnqueued == -1, "allocation failure: enqueue returns -1");
    check(dataTypes == -1, "allocation failure: getOutputDataTypes returns -1");
    check(created == nullptr && cloned == nullptr, "allocation failure: createPlugin and clone return nullptr");
    delete partition;
    delete attention;
}

//! Finding: window[0] * window[1] and nWh * nWw could overflow int32 on hostile attributes.
void testHostileSizes()
{
    IPluginCreatorV3One* attention = creator("SwinWindowAttention");
    struct
    {
        int32_t wh, ww, height, width;
    } const attentionCases[] = {{46341, 46341, 46341, 46341}, {65536, 65536, 65536, 65536}, {7, 7, 1 << 24, 1 << 24}};
    for (auto const& c : attentionCases)
    {
        Fields f;
        f.i("num_heads", {1}).i("window_size", {c.wh, c.ww}).i("shift_size", {0, 0}).i("height", {c.height});
        f.i("width", {c.width}).f("scale", 0.1F);
        gLogger.messages.clear();
        IPluginV3* p = attention->createPlugin("hostile", f.get(), TensorRTPhase::kBUILD);
        check(p == nullptr && gLogger.saw("2^"), "attention: refuses window " + std::to_string(c.wh) + " over grid "
                + std::to_string(c.height) + " with a bound in the message");
        delete p;
    }
    Fields rf;
    rf.i("window_size", {1, 1}).i("shift_size", {0, 0}).i("pad_first", {1}).i("height", {1 << 24}).i("width", {1 << 24});
    gLogger.messages.clear();
    IPluginV3* q = creator("SwinWindowReverse")->createPlugin("hostile", rf.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw("2^31 - 1 positions"), "reverse: refuses a 2^24 x 2^24 map");
    delete q;

    // Partition learns H and W from its input: getOutputShapes, configurePlugin and enqueue refuse them.
    Fields pf;
    pf.i("window_size", {65536, 65536}).i("shift_size", {0, 0}).i("pad_first", {1});
    IPluginV3* p = creator("SwinWindowPartition")->createPlugin("big window", pf.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "partition: a large window alone is accepted");
    if (p == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs in{};
    in.nbDims = 4;
    in.d[0] = eb.mImplObject.make(false, 1);
    in.d[1] = eb.constant(7);
    in.d[2] = eb.constant(7);
    in.d[3] = eb.constant(4);
    DimsExprs out{};
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("2^31 - 1 positions"),
        "partition: getOutputShapes refuses a window whose padded map overflows int32");
    DynamicPluginTensorDesc cin = desc(DataType::kFLOAT, {1, 7, 7, 4});
    DynamicPluginTensorDesc cout = desc(DataType::kFLOAT, {1, 1, 4});
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) != 0, "partition: configurePlugin refuses it too");
    float buffer[4] = {};
    void const* inputs[] = {buffer};
    void* outputs[] = {buffer};
    check(runtime(p)->enqueue(&cin.desc, &cout.desc, inputs, outputs, nullptr, nullptr) != 0,
        "partition: enqueue refuses it before launching");
    delete p;
}

//! Finding: attention's enqueue did not check dim0 % nW == 0, so a batch of partial images got wrong masks.
void testAttentionNeedsWholeImages()
{
    Fields f;
    f.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {14});
    f.f("scale", 0.17677669F);
    IPluginV3* p = creator("SwinWindowAttention")->createPlugin("attn", f.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention batch: created");
    if (p == nullptr)
    {
        return;
    }
    DynamicPluginTensorDesc io[3]
        = {desc(DataType::kHALF, {7, 49, 288}), desc(DataType::kHALF, {169, 3}), desc(DataType::kHALF, {7, 49, 96})};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(io, 2, io + 2, 1) != 0 && gLogger.saw("not a multiple of the 4 windows"),
        "attention batch: configurePlugin refuses 7 rows of a 4-window grid");
    PluginTensorDesc in[2] = {io[0].desc, io[1].desc};
    uint16_t buffer[8] = {};
    void const* inputs[] = {buffer, buffer};
    void* outputs[] = {buffer};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(in, &io[2].desc, inputs, outputs, nullptr, nullptr) != 0
            && gLogger.saw("not a multiple of the 4 windows"),
        "attention batch: enqueue refuses 7 rows before launching");
    DynamicPluginTensorDesc whole[3]
        = {desc(DataType::kHALF, {8, 49, 288}), desc(DataType::kHALF, {169, 3}), desc(DataType::kHALF, {8, 49, 96})};
    check(build(p)->configurePlugin(whole, 2, whole + 2, 1) == 0, "attention batch: 8 rows (2 images) accepted");
    delete p;
}

//! Finding: the registering library called getCreators as an undefined symbol, which the dynamic linker binds
//! in the global scope first: any plugin library loaded RTLD_GLOBAL or preloaded before it (they all export a
//! getCreators) would have had ITS creators registered. This runs in a child of this test started with
//! LD_PRELOAD=libswin_trt_decoy_creators.so (a getCreators with no creators, first in the global scope): the
//! registering library, dlopened RTLD_LOCAL as Triton does, must register libswin_trt_plugins.so's four.
int runDecoyFirst()
{
    void* const global = dlsym(RTLD_DEFAULT, "getCreators");
    Dl_info globalInfo{};
    check(global != nullptr && dladdr(global, &globalInfo) != 0 && globalInfo.dli_fname != nullptr
            && strstr(globalInfo.dli_fname, "libswin_trt_decoy_creators") != nullptr,
        "decoy first: a global lookup of getCreators finds the decoy (the case the registrar must not fall for)");
    void* const plugins = dlopen(SWIN_TRT_PLUGINS_LIBRARY, RTLD_NOLOAD | RTLD_LAZY);
    void* const real = plugins != nullptr ? dlsym(plugins, "getCreators") : nullptr;
    check(real != nullptr && real != global, "decoy first: libswin_trt_plugins.so's own getCreators differs");
    if (real == nullptr)
    {
        return 1;
    }
    swin_trt::plugin::GetCreatorsFunction realGetCreators = nullptr;
    memcpy(&realGetCreators, &real, sizeof(real));
    int32_t count = 0;
    IPluginCreatorInterface* const* const creators = realGetCreators(count);

    void* const handle = dlopen(SWIN_TRT_AUTOREG_TEST_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, std::string("decoy first: the registering library loads: ")
            + (handle == nullptr ? dlerror() : "ok"));
    check(count == 4 && gRegistry.entries.size() == 4, "decoy first: four creators registered at load");
    for (size_t i = 0; i < gRegistry.entries.size() && i < static_cast<size_t>(count); ++i)
    {
        check(gRegistry.entries[i].creator == creators[i],
            "decoy first: " + gRegistry.entries[i].name + " is libswin_trt_plugins.so's own creator");
    }
    // The lookup itself, from an address inside the registering library (its dynamic section).
    struct link_map* map = nullptr;
    if (handle != nullptr && dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr)
    {
        gReports.clear();
        check(swin_trt::plugin::findDependencyGetCreators(map->l_ld, "libswin_trt_plugins.so", keepReport)
                == realGetCreators && gReports.empty(),
            "decoy first: findDependencyGetCreators resolves its own dependency's getCreators");
        check(swin_trt::plugin::findDependencyGetCreators(map->l_ld, "libsomething_else.so", keepReport) == nullptr
                && reported("not in libsomething_else.so"),
            "decoy first: a getCreators in another library than the one named is refused, with a report");
    }
    else
    {
        check(false, "decoy first: dlinfo(RTLD_DI_LINKMAP) of the registering library");
    }
    printf("swin_trt_plugin_host_test --decoy-first: %d checks, %d failures\n", gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}

//! Starts runDecoyFirst in a child (this executable again, with the decoy preloaded) and checks its status.
void testRegistrarIgnoresGlobalGetCreators(char const* argv0)
{
    fflush(stdout);
    fflush(stderr);
    pid_t const child = fork();
    if (child == 0)
    {
        setenv("LD_PRELOAD", SWIN_TRT_DECOY_LIBRARY, 1);
        execl("/proc/self/exe", argv0, "--decoy-first", static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = -1;
    bool const waited = child > 0 && waitpid(child, &status, 0) == child;
    check(waited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "registrar: with another getCreators first in the global scope (preloaded), the registering library "
        "registers its own dependency's creators (child exit status "
            + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
    // And from this process (nothing preloaded): the lookup function on the test's own copy of the registrar,
    // with an address of the registering library's host-test copy.
    void* const handle = dlopen(SWIN_TRT_AUTOREG_TEST_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    struct link_map* map = nullptr;
    int32_t count = 0;
    IPluginCreatorInterface* const* const creators = getCreators(count);
    swin_trt::plugin::GetCreatorsFunction const found = handle != nullptr
            && dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr
        ? swin_trt::plugin::findDependencyGetCreators(map->l_ld, "libswin_trt_plugins.so", keepReport)
        : nullptr;
    int32_t foundCount = 0;
    check(found != nullptr && found(foundCount) == creators && foundCount == count,
        "registrar: findDependencyGetCreators returns libswin_trt_plugins.so's getCreators");
    gReports.clear();
    check(swin_trt::plugin::findDependencyGetCreators(nullptr, "libswin_trt_plugins.so", keepReport) == nullptr
            && reported("dladdr failed"),
        "registrar: no address, no lookup (reported)");
    if (handle != nullptr)
    {
        dlclose(handle);
    }
}

} // namespace

void testWindows3d(); // plugin_host_test_3d.cpp
void testFusedAttention(); // plugin_host_test_fused.cpp

int main(int argc, char** argv)
{
    if (argc == 2 && strcmp(argv[1], "--decoy-first") == 0)
    {
        return runDecoyFirst();
    }
    setLoggerFinder(&gFinder);
    testRegistry();
    testPartition();
    testReverse();
    testReverseAnySize();
    testAttention();
    testAttentionAnySize();
    testAttentionCosineFields();
    testWindows3d();
    testFusedAttention();
    testInt8Scales();
    testNoexceptMethodsSurviveFailingAllocations();
    testHostileSizes();
    testAttentionNeedsWholeImages();
    testRegistrarGuards();
    testRegistrationAtLoad();
    testRegistrarIgnoresGlobalGetCreators(argv[0]);
    printf("swin_trt_plugin_host_test (TensorRT %d.%d headers): %d checks, %d failures\n", NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR, gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}
