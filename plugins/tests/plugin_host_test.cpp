// swin_trt_plugin_host_test: drives libswin_trt_plugins.so through the entry points and interfaces TensorRT
// uses (getCreators, setLoggerFinder, IPluginCreatorV3One, IPluginV3 capabilities), without TensorRT's
// libraries or a GPU: creator field lists and validation, serialization round trip, clone/attachToContext,
// supportsFormatCombination, getOutputDataTypes, configurePlugin, and getOutputShapes with a dynamic batch
// through a mock IExprBuilder. enqueue's kernels need a GPU (tests/test_cuda_kernels.py covers them); its
// argument checks, which run before any launch, are tested here.
//
// The review's findings each have a test: int8 partition/reverse with two different scales is refused;
// every noexcept method survives failing allocations (operator new is replaced below and made to throw);
// sizes whose window products overflow int32 are refused; attention refuses a batch of partial images.
#include "NvInferRuntime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <new>
#include <string>
#include <vector>

// ---- allocation failure injection: while gFailAllocations is set, every operator new throws -------------
// (The plugin library resolves operator new to this definition: the executable's symbol interposes.)
namespace
{
bool gFailAllocations = false;
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

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" void setLoggerFinder(ILoggerFinder* finder);

namespace
{

int gFailures = 0;
int gChecks = 0;

void check(bool ok, std::string const& what)
{
    ++gChecks;
    if (!ok && ++gFailures <= 30)
    {
        fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

// ---- logger ------------------------------------------------------------------------------------------------
class CaptureLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING && !gFailAllocations) // (no memory: the message is dropped)
        {
            messages.emplace_back(msg);
        }
    }

    bool saw(char const* needle) const
    {
        for (auto const& m : messages)
        {
            if (m.find(needle) != std::string::npos)
            {
                return true;
            }
        }
        return false;
    }

    std::vector<std::string> messages;
};

CaptureLogger gLogger;

class Finder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &gLogger;
    }
};

Finder gFinder;

// ---- mock IExprBuilder: every expression carries its value for a concrete batch, and whether it is constant --
class ExprImpl : public apiv::VDimensionExpr
{
public:
    ExprImpl(bool constant, int64_t value)
        : mConstant(constant)
        , mValue(value)
    {
    }

    bool isConstant() const override
    {
        return mConstant;
    }

    int64_t getConstantValue() const override
    {
        return mConstant ? mValue : -1;
    }

    bool isSizeTensor() const override
    {
        return false;
    }

    bool mConstant;
    int64_t mValue;
};

class MockExpr : public IDimensionExpr
{
public:
    MockExpr(bool constant, int64_t value)
        : mImplObject(constant, value)
    {
        mImpl = &mImplObject;
    }

    ExprImpl mImplObject;
};

int64_t valueOf(IDimensionExpr const* e)
{
    return static_cast<MockExpr const*>(e)->mImplObject.mValue;
}

class BuilderImpl : public apiv::VExprBuilder
{
public:
    IDimensionExpr const* make(bool constant, int64_t v)
    {
        pool.emplace_back(new MockExpr(constant, v));
        return pool.back().get();
    }

    IDimensionExpr const* constant(int64_t value) override
    {
        return make(true, value);
    }

    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override
    {
        int64_t const x = valueOf(&a);
        int64_t const y = valueOf(&b);
        int64_t v = 0;
        switch (op)
        {
        case DimensionOperation::kSUM: v = x + y; break;
        case DimensionOperation::kPROD: v = x * y; break;
        case DimensionOperation::kMAX: v = x > y ? x : y; break;
        case DimensionOperation::kMIN: v = x < y ? x : y; break;
        case DimensionOperation::kSUB: v = x - y; break;
        case DimensionOperation::kEQUAL: v = x == y; break;
        case DimensionOperation::kLESS: v = x < y; break;
        case DimensionOperation::kFLOOR_DIV: v = x / y; break;
        case DimensionOperation::kCEIL_DIV: v = (x + y - 1) / y; break;
        }
        return make(a.isConstant() && b.isConstant(), v);
    }

    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }

    std::vector<std::unique_ptr<MockExpr>> pool;
};

class MockBuilder : public IExprBuilder
{
public:
    MockBuilder()
    {
        mImpl = &mImplObject;
    }

    BuilderImpl mImplObject;
};

// ---- helpers -----------------------------------------------------------------------------------------------
IPluginCreatorV3One* creator(char const* name)
{
    int32_t n = 0;
    IPluginCreatorInterface* const* list = getCreators(n);
    for (int32_t i = 0; i < n; ++i)
    {
        auto* c = static_cast<IPluginCreatorV3One*>(list[i]);
        if (strcmp(c->getPluginName(), name) == 0)
        {
            return c;
        }
    }
    return nullptr;
}

struct Fields
{
    std::vector<std::vector<int32_t>> ints;
    std::vector<float> floats;
    std::vector<PluginField> fields;
    PluginFieldCollection fc{};

    Fields()
    {
        ints.reserve(16);
        floats.reserve(16);
    }

    Fields& i(char const* name, std::vector<int32_t> v)
    {
        ints.push_back(std::move(v));
        fields.emplace_back(name, ints.back().data(), PluginFieldType::kINT32, static_cast<int32_t>(ints.back().size()));
        return *this;
    }

    Fields& f(char const* name, float v)
    {
        floats.push_back(v);
        fields.emplace_back(name, &floats.back(), PluginFieldType::kFLOAT32, 1);
        return *this;
    }

    PluginFieldCollection const* get()
    {
        fc.nbFields = static_cast<int32_t>(fields.size());
        fc.fields = fields.data();
        return &fc;
    }
};

IPluginV3OneBuild* build(IPluginV3* p)
{
    return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}

IPluginV3OneRuntime* runtime(IPluginV3* p)
{
    return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

IPluginV3OneCore* core(IPluginV3* p)
{
    return static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
}

DynamicPluginTensorDesc desc(DataType type, std::vector<int64_t> dims, TensorFormat format = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc d{};
    d.desc.type = type;
    d.desc.format = format;
    d.desc.dims.nbDims = static_cast<int32_t>(dims.size());
    for (size_t k = 0; k < dims.size(); ++k)
    {
        d.desc.dims.d[k] = dims[k];
    }
    d.min = d.desc.dims;
    d.max = d.desc.dims;
    d.opt = d.desc.dims;
    return d;
}

//! Serialize -> create (runtime phase) -> serialize again: same fields.
void checkRoundTrip(IPluginCreatorV3One* c, IPluginV3* p, std::string const& what)
{
    PluginFieldCollection const* a = runtime(p)->getFieldsToSerialize();
    IPluginV3* q = c->createPlugin("restored", a, TensorRTPhase::kRUNTIME);
    check(q != nullptr, what + ": createPlugin from serialized fields");
    if (q == nullptr)
    {
        return;
    }
    // Re-read both (the first collection may point into p's scratch that a second call rebuilds).
    a = runtime(p)->getFieldsToSerialize();
    PluginFieldCollection const* b = runtime(q)->getFieldsToSerialize();
    bool same = a->nbFields == b->nbFields;
    for (int32_t k = 0; same && k < a->nbFields; ++k)
    {
        PluginField const& x = a->fields[k];
        PluginField const& y = b->fields[k];
        size_t const bytes = (x.type == PluginFieldType::kFLOAT32 || x.type == PluginFieldType::kINT32 ? 4 : 0)
            * static_cast<size_t>(x.length);
        same = strcmp(x.name, y.name) == 0 && x.type == y.type && x.length == y.length && bytes > 0
            && memcmp(x.data, y.data, bytes) == 0;
    }
    check(same, what + ": serialization round trip");
    IPluginV3* cl = p->clone();
    IPluginV3* at = runtime(p)->attachToContext(nullptr);
    check(cl != nullptr && at != nullptr && strcmp(core(cl)->getPluginName(), core(p)->getPluginName()) == 0,
        what + ": clone/attachToContext");
    delete cl;
    delete at;
    delete q;
}

void testRegistry()
{
    int32_t n = -1;
    IPluginCreatorInterface* const* list = getCreators(n);
    check(n == 3 && list != nullptr, "getCreators returns 3 creators");
    char const* const names[] = {"SwinWindowPartition", "SwinWindowReverse", "SwinWindowAttention"};
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
    in.d[1] = eb.mImplObject.make(false, 9);
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("must be static"),
        "partition: dynamic H is refused with a message");

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
        {3, 17, 17, 17, 0.1F, "window_size"}};
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

//! Finding: int8 partition/reverse copied codes unchanged even when a weakly typed 10.x build gave input and
//! output different scales. Now refused in configurePlugin, onShapeChange and enqueue.
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
            bool ok;
        } const cases[] = {{DataType::kINT8, 0.1F, 0.2F, false}, {DataType::kINT8, 0.1F, 0.1F, true},
            {DataType::kINT8, -1.0F, -1.0F, true}, {DataType::kINT8, 0.1F, -1.0F, true},
            {DataType::kHALF, 0.1F, 0.2F, true}};
        for (auto const& c : cases)
        {
            std::string const what = name + " type " + std::to_string(static_cast<int>(c.type)) + " scales "
                + std::to_string(c.inScale) + " -> " + std::to_string(c.outScale);
            DynamicPluginTensorDesc in = desc(c.type, op.in);
            DynamicPluginTensorDesc out = desc(c.type, op.out);
            in.desc.scale = c.inScale;
            out.desc.scale = c.outScale;
            gLogger.messages.clear();
            int32_t const configured = build(op.plugin)->configurePlugin(&in, 1, &out, 1);
            check((configured == 0) == c.ok && (c.ok || gLogger.saw("differs from the output scale")),
                what + ": configurePlugin");
            check((runtime(op.plugin)->onShapeChange(&in.desc, 1, &out.desc, 1) == 0) == c.ok,
                what + ": onShapeChange");
            if (!c.ok) // (the accepted cases would launch a kernel: no GPU here)
            {
                check(runtime(op.plugin)->enqueue(&in.desc, &out.desc, inputs, outputs, nullptr, nullptr) != 0,
                    what + ": enqueue refuses before launching");
            }
        }
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

} // namespace

int main()
{
    setLoggerFinder(&gFinder);
    testRegistry();
    testPartition();
    testReverse();
    testAttention();
    testInt8Scales();
    testNoexceptMethodsSurviveFailingAllocations();
    testHostileSizes();
    testAttentionNeedsWholeImages();
    printf("swin_trt_plugin_host_test (TensorRT %d.%d headers): %d checks, %d failures\n", NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR, gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}
