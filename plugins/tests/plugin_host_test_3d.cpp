// 3D windows (Video Swin) through the plugin library's interfaces, part of swin_trt_plugin_host_test: fields
// (3-int window_size/shift_size, frames, pad_first = 1), 5-D shapes through the mock IExprBuilder (constant and
// symbolic T, H, W), profile ends, formats, attention's dense bias (input 1 of rank 3) and its 512-token limit,
// enqueue's checks before any launch, and that a 2D node still serializes exactly its old fields.
#include "NvInferRuntime.h"

#include "plugin_test_support.h"

#include <string.h>

#include <string>
#include <vector>

using namespace nvinfer1;
using namespace swin_test;

namespace
{

//! The serialized fields' names, in order.
std::string fieldNames(IPluginV3* p)
{
    PluginFieldCollection const* fc = runtime(p)->getFieldsToSerialize();
    std::string names;
    for (int32_t k = 0; k < fc->nbFields; ++k)
    {
        names += std::string(k > 0 ? "," : "") + fc->fields[k].name;
    }
    return names;
}

//! The length of serialized field `name` (0 when absent).
int32_t fieldLength(IPluginV3* p, char const* name)
{
    PluginFieldCollection const* fc = runtime(p)->getFieldsToSerialize();
    for (int32_t k = 0; k < fc->nbFields; ++k)
    {
        if (strcmp(fc->fields[k].name, name) == 0)
        {
            return fc->fields[k].length;
        }
    }
    return 0;
}

//! A creator that must refuse `f`, logging `expect`.
void refuses(char const* op, Fields& f, char const* expect, std::string const& what)
{
    gLogger.messages.clear();
    IPluginV3* q = creator(op)->createPlugin("bad3d", f.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw(expect), what);
    delete q;
}

void testPartition3d()
{
    IPluginCreatorV3One* c = creator("SwinWindowPartition");
    Fields good;
    good.i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1});
    IPluginV3* p = c->createPlugin("part3d", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "partition 3D: valid fields");
    if (p == nullptr)
    {
        return;
    }
    // x (B = 2 dynamic, 8, 14, 14, 96): nW = 4 * 2 * 2 = 16, N = 98.
    MockBuilder eb;
    DimsExprs in{};
    in.nbDims = 5;
    in.d[0] = symbolic(eb, 2);
    in.d[1] = eb.constant(8);
    in.d[2] = eb.constant(14);
    in.d[3] = eb.constant(14);
    in.d[4] = eb.constant(96);
    DimsExprs out{};
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 3
            && valueOf(out.d[0]) == 32 && out.d[1]->getConstantValue() == 98 && valueOf(out.d[2]) == 96,
        "partition 3D: output (B * 16, 98, 96)");
    // Any size: ceil(5 / 2) * ceil(10 / 7) * ceil(20 / 7) = 3 * 2 * 3 windows per clip.
    in.d[1] = symbolic(eb, 5);
    in.d[2] = symbolic(eb, 10);
    in.d[3] = symbolic(eb, 20);
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) == 0 && !out.d[0]->isConstant()
            && valueOf(out.d[0]) == 2 * 18 && out.d[1]->getConstantValue() == 98,
        "partition 3D: symbolic T, H, W: output (B * ceil(T/2) ceil(H/7) ceil(W/7), 98, C)");
    in.nbDims = 4;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(&in, 1, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("5-D (B, T, H, W, C)"),
        "partition 3D: a 4-D map refused, naming the 5-D layout");

    DynamicPluginTensorDesc any = ranged(DataType::kINT8, {-1, -1, -1, -1, 8}, {1, 1, 4, 5, 8}, {8, 32, 224, 224, 8});
    DynamicPluginTensorDesc anyOut = desc(DataType::kINT8, {-1, 98, 8});
    check(build(p)->configurePlugin(&any, 1, &anyOut, 1) == 0,
        "partition 3D: configurePlugin with a T x H x W profile");
    check(build(p)->supportsFormatCombination(0, &any, 1, 1), "partition 3D: int8 5-D map");
    DynamicPluginTensorDesc huge
        = ranged(DataType::kHALF, {-1, -1, -1, -1, 8}, {1, 1, 4, 5, 8}, {8, 4096, 1024, 1024, 8});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(&huge, 1, &anyOut, 1) != 0 && gLogger.saw("profile's maximum")
            && gLogger.saw("Tp * Hp * Wp"),
        "partition 3D: a profile maximum beyond 2^31 positions refused, naming the maximum");
    check(fieldLength(p, "window_size") == 3 && fieldLength(p, "shift_size") == 3, "partition 3D: 3-int fields");
    checkRoundTrip(c, p, "partition 3D");
    delete p;

    Fields timm;
    timm.i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {0});
    refuses("SwinWindowPartition", timm, "must be 1 for a 3D window", "partition 3D: pad_first 0 refused");
    Fields mixed;
    mixed.i("window_size", {2, 7, 7}).i("shift_size", {3, 3}).i("pad_first", {1});
    refuses("SwinWindowPartition", mixed, "as many as window_size", "partition 3D: a 2-int shift refused");
    Fields big;
    big.i("window_size", {2, 7, 7}).i("shift_size", {2, 3, 3}).i("pad_first", {1});
    refuses("SwinWindowPartition", big, "shift_size' = [2, 3, 3]", "partition 3D: shift >= window refused");
    Fields four;
    four.i("window_size", {1, 2, 7, 7}).i("shift_size", {0, 1, 3, 3}).i("pad_first", {1});
    refuses("SwinWindowPartition", four, "2 (H, W) or 3 (T, H, W", "partition: a 4-int window refused");
}

void testReverse3d()
{
    IPluginCreatorV3One* c = creator("SwinWindowReverse");
    Fields sized;
    sized.i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1}).i("frames", {5});
    sized.i("height", {14}).i("width", {20});
    IPluginV3* p = c->createPlugin("rev3d", sized.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "reverse 3D: valid fields");
    if (p == nullptr)
    {
        return;
    }
    // nW = ceil(5/2) * 2 * 3 = 18; 36 rows -> B = 2.
    MockBuilder eb;
    DimsExprs in[2]{};
    in[0].nbDims = 3;
    in[0].d[0] = symbolic(eb, 36);
    in[0].d[1] = eb.constant(98);
    in[0].d[2] = eb.constant(96);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 1, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 5 && valueOf(out.d[0]) == 2
            && out.d[1]->getConstantValue() == 5 && out.d[2]->getConstantValue() == 14
            && out.d[3]->getConstantValue() == 20 && valueOf(out.d[4]) == 96,
        "reverse 3D: output (B, 5, 14, 20, 96)");
    DynamicPluginTensorDesc cin = desc(DataType::kHALF, {-1, 98, 96});
    DynamicPluginTensorDesc cout = desc(DataType::kHALF, {-1, 5, 14, 20, 96});
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) == 0, "reverse 3D: configurePlugin");
    cin = desc(DataType::kHALF, {20, 98, 96});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(&cin, 1, &cout, 1) != 0 && gLogger.saw("18 windows of a 5x14x20 map"),
        "reverse 3D: dim 0 not a multiple of nW refused");
    check(fieldNames(p) == "window_size,shift_size,pad_first,frames,height,width", "reverse 3D: serializes frames");
    checkRoundTrip(c, p, "reverse 3D");
    delete p;

    // Any size: the 5-D feature map's (B, T, H, W) passed through.
    Fields any;
    any.i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1});
    p = c->createPlugin("rev3d_any", any.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "reverse 3D any size: created without a size");
    if (p == nullptr)
    {
        return;
    }
    in[1].nbDims = 5;
    in[1].d[0] = symbolic(eb, 2);
    in[1].d[1] = symbolic(eb, 5);
    in[1].d[2] = symbolic(eb, 14);
    in[1].d[3] = symbolic(eb, 20);
    in[1].d[4] = eb.constant(96);
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 5 && out.d[0] == in[1].d[0]
            && out.d[1] == in[1].d[1] && out.d[2] == in[1].d[2] && out.d[3] == in[1].d[3] && out.d[4] == in[0].d[2],
        "reverse 3D any size: output (fm.B, fm.T, fm.H, fm.W, windows.C)");
    in[1].nbDims = 4;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("5-D (B, T, H, W, C)"),
        "reverse 3D any size: a 4-D feature map refused");
    DynamicPluginTensorDesc cfg[2] = {ranged(DataType::kFLOAT, {-1, 98, 96}, {1, 98, 96}, {4096, 98, 96}),
        ranged(DataType::kFLOAT, {-1, -1, -1, -1, 96}, {1, 1, 7, 7, 96}, {8, 32, 56, 56, 96})};
    DynamicPluginTensorDesc anyOut = desc(DataType::kFLOAT, {-1, -1, -1, -1, 96});
    check(build(p)->configurePlugin(cfg, 2, &anyOut, 1) == 0, "reverse 3D any size: configurePlugin with a profile");
    // enqueue: (2, 5, 14, 20) -> 18 windows per clip; 35 rows refused before any launch.
    PluginTensorDesc run[2]
        = {plainDesc(DataType::kFLOAT, {35, 98, 8}), plainDesc(DataType::kFLOAT, {2, 5, 14, 20, 8})};
    PluginTensorDesc runOut = plainDesc(DataType::kFLOAT, {2, 5, 14, 20, 8});
    float buffer[8] = {};
    void const* inputs[] = {buffer, buffer};
    void* outputs[] = {buffer};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(run, &runOut, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("B * nW = 2 * 18"),
        "reverse 3D any size: enqueue refuses 35 rows for 2 clips of 18 windows");
    checkRoundTrip(c, p, "reverse 3D any size");
    delete p;

    Fields noFrames;
    noFrames.i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1}).i("height", {14});
    noFrames.i("width", {20});
    refuses("SwinWindowReverse", noFrames, "give all three", "reverse 3D: height/width without frames refused");
    Fields frames2d;
    frames2d.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).i("frames", {4});
    frames2d.i("height", {14}).i("width", {20});
    refuses("SwinWindowReverse", frames2d, "only for a 3D window", "reverse: frames on a 2D node refused");

    // A 2D node serializes exactly the fields it always had.
    Fields plain;
    plain.i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).i("height", {14}).i("width", {20});
    IPluginV3* q = c->createPlugin("rev2d", plain.get(), TensorRTPhase::kBUILD);
    check(q != nullptr && fieldNames(q) == "window_size,shift_size,pad_first,height,width"
            && fieldLength(q, "window_size") == 2,
        "reverse 2D: the fields of before (no frames)");
    delete q;
}

void testAttention3d()
{
    IPluginCreatorV3One* c = creator("SwinWindowAttention");
    Fields sized;
    sized.i("num_heads", {3}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("frames", {4});
    sized.i("height", {14}).i("width", {14}).f("scale", 0.17677669F);
    IPluginV3* p = c->createPlugin("attn3d", sized.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention 3D: valid fields");
    if (p == nullptr)
    {
        return;
    }
    // 8 windows per clip (2 x 2 x 2); N = 98, table (3 * 13 * 13 = 507, 3), or a dense (3, 98, 98) bias.
    MockBuilder eb;
    DimsExprs in[2]{};
    in[0].nbDims = 3;
    in[0].d[0] = symbolic(eb, 16);
    in[0].d[1] = eb.constant(98);
    in[0].d[2] = eb.constant(288);
    in[1].nbDims = 3;
    in[1].d[0] = eb.constant(3);
    in[1].d[1] = eb.constant(98);
    in[1].d[2] = eb.constant(98);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 3 && valueOf(out.d[0]) == 16
            && out.d[1]->getConstantValue() == 98 && out.d[2]->getConstantValue() == 96,
        "attention 3D: output (rows, 98, 96) with a dense bias");
    in[1].nbDims = 4;
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0, "attention 3D: a 4-D bias refused");

    for (bool dense : {false, true})
    {
        std::vector<int64_t> const bias = dense ? std::vector<int64_t>{3, 98, 98} : std::vector<int64_t>{507, 3};
        DynamicPluginTensorDesc io[3] = {desc(DataType::kHALF, {-1, 98, 288}), desc(DataType::kHALF, bias),
            desc(DataType::kHALF, {-1, 98, 96})};
        std::string const form = dense ? "dense bias" : "table";
        check(build(p)->supportsFormatCombination(0, io, 2, 1) && build(p)->supportsFormatCombination(1, io, 2, 1)
                && build(p)->supportsFormatCombination(2, io, 2, 1),
            "attention 3D: float16 formats with the " + form);
        check(build(p)->configurePlugin(io, 2, io + 2, 1) == 0, "attention 3D: configurePlugin with the " + form);
    }
    DynamicPluginTensorDesc fourD[3] = {desc(DataType::kHALF, {-1, 98, 288}), desc(DataType::kHALF, {1, 3, 98, 98}),
        desc(DataType::kHALF, {-1, 98, 96})};
    check(!build(p)->supportsFormatCombination(1, fourD, 2, 1), "attention 3D: a 4-D bias is no format");
    DynamicPluginTensorDesc wrongDense[3] = {desc(DataType::kFLOAT, {-1, 98, 288}),
        desc(DataType::kFLOAT, {3, 98, 97}), desc(DataType::kFLOAT, {-1, 98, 96})};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(wrongDense, 2, wrongDense + 2, 1) != 0
            && gLogger.saw("(num_heads, N, N) = (3, 98, 98)"),
        "attention 3D: a dense bias of the wrong shape refused, naming (heads, N, N)");
    DynamicPluginTensorDesc wrongTable[3] = {desc(DataType::kFLOAT, {-1, 98, 288}), desc(DataType::kFLOAT, {169, 3}),
        desc(DataType::kFLOAT, {-1, 98, 96})};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(wrongTable, 2, wrongTable + 2, 1) != 0 && gLogger.saw("(2*wt-1)*(2*wh-1)*(2*ww-1)")
            && gLogger.saw("(507, 3)"),
        "attention 3D: a 2D-sized table refused, naming the 3D table's rows");
    DynamicPluginTensorDesc partial[3] = {desc(DataType::kFLOAT, {12, 98, 288}), desc(DataType::kFLOAT, {507, 3}),
        desc(DataType::kFLOAT, {12, 98, 96})};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(partial, 2, partial + 2, 1) != 0 && gLogger.saw("8 windows of the 4x14x14 grid"),
        "attention 3D: rows that are not whole clips refused");
    check(fieldNames(p) == "num_heads,window_size,shift_size,frames,height,width,scale",
        "attention 3D: serializes frames");
    checkRoundTrip(c, p, "attention 3D");
    delete p;

    // Any size: a shifted node without a size takes its grid from a 5-D feature map: (2, 3, 10, 20) rounds up to
    // 4 x 14 x 21, 2 x 2 x 3 = 12 windows per clip.
    Fields any;
    any.i("num_heads", {3}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).f("scale", 0.17677669F);
    p = c->createPlugin("attn3d_any", any.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention 3D any size: created without a size");
    if (p == nullptr)
    {
        return;
    }
    DimsExprs in3[3]{};
    in3[0] = in[0];
    in3[1].nbDims = 2;
    in3[1].d[0] = eb.constant(507);
    in3[1].d[1] = eb.constant(3);
    in3[2].nbDims = 5;
    for (int32_t k = 0; k < 5; ++k)
    {
        in3[2].d[k] = symbolic(eb, 8);
    }
    check(build(p)->getOutputShapes(in3, 3, nullptr, 0, &out, 1, eb) == 0, "attention 3D any size: 5-D feature map");
    in3[2].nbDims = 4;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in3, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("5-D (B, T, H, W, C)"),
        "attention 3D any size: a 4-D feature map refused");
    DynamicPluginTensorDesc cfg[4] = {ranged(DataType::kHALF, {-1, 98, 288}, {1, 98, 288}, {4096, 98, 288}),
        desc(DataType::kFLOAT, {507, 3}),
        ranged(DataType::kHALF, {-1, -1, -1, -1, 96}, {1, 1, 7, 7, 96}, {8, 32, 56, 56, 96}),
        desc(DataType::kHALF, {-1, 98, 96})};
    check(build(p)->configurePlugin(cfg, 3, cfg + 3, 1) == 0, "attention 3D any size: configurePlugin with a profile");
    PluginTensorDesc run[3] = {plainDesc(DataType::kHALF, {23, 98, 288}), plainDesc(DataType::kFLOAT, {507, 3}),
        plainDesc(DataType::kFLOAT, {2, 3, 10, 20, 96})};
    PluginTensorDesc runOut = plainDesc(DataType::kHALF, {23, 98, 96});
    uint16_t buffer[8] = {};
    void const* inputs[] = {buffer, buffer, buffer};
    void* outputs[] = {buffer};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(run, &runOut, inputs, outputs, nullptr, nullptr) != 0
            && gLogger.saw("B * nW = 2 * 12") && gLogger.saw("grid 4x14x21"),
        "attention 3D any size: enqueue refuses 23 rows for 2 clips of 12 windows");
    checkRoundTrip(c, p, "attention 3D any size");
    delete p;

    // Video Swin's 8x7x7 window: 392 tokens, every head dim up to 128, both types; 9x8x8 = 576 is beyond 512.
    Fields video;
    video.i("num_heads", {2}).i("window_size", {8, 7, 7}).i("shift_size", {0, 0, 0}).f("scale", 0.125F);
    p = c->createPlugin("attn392", video.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "attention 3D: an 8x7x7 window (392 tokens) accepted");
    for (int64_t headDim : {1, 32, 64, 100, 128})
    {
        for (DataType t : {DataType::kFLOAT, DataType::kHALF})
        {
            int64_t const c3 = 3 * 2 * headDim;
            DynamicPluginTensorDesc io[3] = {
                desc(t, {-1, 392, c3}), desc(t, {15 * 13 * 13, 2}), desc(t, {-1, 392, c3 / 3})};
            check(p != nullptr && build(p)->configurePlugin(io, 2, io + 2, 1) == 0,
                "attention 3D: 392 tokens with head_dim " + std::to_string(headDim) + " configures");
        }
    }
    delete p;
    Fields tooMany;
    tooMany.i("num_heads", {2}).i("window_size", {9, 8, 8}).i("shift_size", {0, 0, 0}).f("scale", 0.125F);
    refuses("SwinWindowAttention", tooMany, "[1, 512]", "attention 3D: 576 tokens refused with the limit");
    Fields notPadded;
    notPadded.i("num_heads", {3}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("frames", {5});
    notPadded.i("height", {14}).i("width", {14}).f("scale", 0.2F);
    refuses("SwinWindowAttention", notPadded, "'frames' = 5", "attention 3D: frames not a multiple of the window");

    // A 2D node serializes exactly the fields it always had.
    Fields plain;
    plain.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("height", {14}).i("width", {14});
    plain.f("scale", 0.2F);
    IPluginV3* q = c->createPlugin("attn2d", plain.get(), TensorRTPhase::kBUILD);
    check(q != nullptr && fieldNames(q) == "num_heads,window_size,shift_size,height,width,scale",
        "attention 2D: the fields of before (no frames)");
    // and takes a dense bias too: (3, 49, 49).
    DynamicPluginTensorDesc dense2d[3] = {desc(DataType::kFLOAT, {-1, 49, 288}), desc(DataType::kFLOAT, {3, 49, 49}),
        desc(DataType::kFLOAT, {-1, 49, 96})};
    check(q != nullptr && build(q)->configurePlugin(dense2d, 2, dense2d + 2, 1) == 0,
        "attention 2D: a dense (heads, N, N) bias configures");
    delete q;
}

} // namespace

//! Called by swin_trt_plugin_host_test's main.
void testWindows3d()
{
    testPartition3d();
    testReverse3d();
    testAttention3d();
}
