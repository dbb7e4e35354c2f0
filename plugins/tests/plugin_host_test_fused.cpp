// SwinFusedWindowAttention through the plugin library's interfaces, part of swin_trt_plugin_host_test: its
// creator and fields (2D and 3D windows, pad_first, V1 and cosine; height/width/frames refused), output shapes
// through the mock IExprBuilder (constant and symbolic B, T, H, W, 3C), formats, configurePlugin's checks
// (profile ends, the kernel's limits and shared-memory plan, the pad row), and enqueue's checks before any launch.
#include "NvInferRuntime.h"

#include "plugin_test_support.h"

#include <string.h>

#include <string>
#include <vector>

using namespace nvinfer1;
using namespace swin_test;

namespace
{

constexpr char const* kOp = "SwinFusedWindowAttention";

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

void refuses(Fields& f, char const* expect, std::string const& what)
{
    gLogger.messages.clear();
    IPluginV3* q = creator(kOp)->createPlugin("bad_fused", f.get(), TensorRTPhase::kBUILD);
    check(q == nullptr && gLogger.saw(expect), "fused: " + what);
    delete q;
}

Fields fields2d()
{
    Fields f;
    f.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {0});
    f.f("scale", 0.25F);
    return f;
}

void testCreator()
{
    IPluginCreatorV3One* c = creator(kOp);
    check(c != nullptr, "fused: creator registered");
    if (c == nullptr)
    {
        return;
    }
    check(strcmp(c->getPluginVersion(), "1") == 0 && strcmp(c->getPluginNamespace(), "swin_trt") == 0,
        "fused: version 1, namespace swin_trt");
    PluginFieldCollection const* names = c->getFieldNames();
    std::string listed;
    for (int32_t k = 0; k < names->nbFields; ++k)
    {
        listed += std::string(k > 0 ? "," : "") + names->fields[k].name;
    }
    check(listed == "num_heads,window_size,shift_size,pad_first,scale,cosine,head_scale",
        "fused: creator lists its fields (no height/width/frames): " + listed);

    Fields good = fields2d();
    IPluginV3* p = c->createPlugin("fused", good.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "fused: valid 2D fields");
    if (p != nullptr)
    {
        check(strcmp(core(p)->getPluginName(), kOp) == 0 && build(p)->getNbOutputs() == 1, "fused: name, 1 output");
        check(fieldNames(p) == "num_heads,window_size,shift_size,pad_first,scale", "fused: V1 serializes "
            + fieldNames(p));
        checkRoundTrip(c, p, "fused 2D");
    }
    delete p;

    Fields cosine;
    cosine.i("num_heads", {2}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1});
    cosine.f("scale", 1.0F).i("cosine", {1}).fs("head_scale", {10.0F, 20.0F});
    IPluginV3* q = c->createPlugin("fused_v2", cosine.get(), TensorRTPhase::kBUILD);
    check(q != nullptr, "fused: valid 3D cosine fields");
    if (q != nullptr)
    {
        check(fieldNames(q) == "num_heads,window_size,shift_size,pad_first,scale,cosine,head_scale",
            "fused: cosine serializes " + fieldNames(q));
        checkRoundTrip(c, q, "fused 3D cosine");
    }
    delete q;

    Fields sized = fields2d();
    sized.i("height", {56}).i("width", {56});
    refuses(sized, "attribute 'height' is not a field of this op", "height/width refused");
    Fields frames;
    frames.i("num_heads", {2}).i("window_size", {2, 7, 7}).i("shift_size", {0, 0, 0}).i("pad_first", {1});
    frames.f("scale", 0.5F).i("frames", {8});
    refuses(frames, "attribute 'frames' is not a field", "frames refused");
    Fields noPad;
    noPad.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).f("scale", 0.25F);
    refuses(noPad, "pad_first", "missing pad_first refused");
    Fields timm3d;
    timm3d.i("num_heads", {2}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {0});
    timm3d.f("scale", 0.5F);
    refuses(timm3d, "must be 1 for a 3D window", "pad_first 0 with a 3D window refused");
    Fields heads = fields2d();
    heads.fields[0].data = heads.ints.emplace_back(std::vector<int32_t>{0}).data();
    refuses(heads, "'num_heads' = 0 out of range", "num_heads 0 refused");
    Fields scale;
    scale.i("num_heads", {3}).i("window_size", {7, 7}).i("shift_size", {3, 3}).i("pad_first", {1}).f("scale", 0.0F);
    refuses(scale, "'scale' = 0", "scale 0 refused");
    Fields big;
    big.i("num_heads", {3}).i("window_size", {8, 8, 9}).i("shift_size", {0, 0, 0}).i("pad_first", {1});
    big.f("scale", 0.5F);
    refuses(big, "not supported: tokens per window", "576 tokens per window refused");
    Fields noHeadScale;
    noHeadScale.i("num_heads", {2}).i("window_size", {7, 7}).i("shift_size", {0, 0}).i("pad_first", {1});
    noHeadScale.f("scale", 1.0F).i("cosine", {1});
    refuses(noHeadScale, "needs attribute 'head_scale'", "cosine without head_scale refused");
}

void testShapes()
{
    Fields good = fields2d();
    IPluginV3* p = creator(kOp)->createPlugin("fused", good.get(), TensorRTPhase::kBUILD);
    if (p == nullptr)
    {
        return;
    }
    MockBuilder eb;
    DimsExprs in[3]{};
    in[0].nbDims = 4;
    in[0].d[0] = symbolic(eb, 2);
    in[0].d[1] = eb.constant(56);
    in[0].d[2] = eb.constant(56);
    in[0].d[3] = eb.constant(288);
    in[1].nbDims = 2;
    in[1].d[0] = eb.constant(169);
    in[1].d[1] = eb.constant(3);
    in[2].nbDims = 1;
    in[2].d[0] = eb.constant(288);
    DimsExprs out{};
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 4 && out.d[0] == in[0].d[0]
            && out.d[1]->getConstantValue() == 56 && out.d[2]->getConstantValue() == 56
            && out.d[3]->isConstant() && out.d[3]->getConstantValue() == 96,
        "fused: output (B, 56, 56, 96) for qkv (B, 56, 56, 288)");
    // Any size and channels: the output keeps input 0's dims, the last one divided by 3.
    in[0].d[1] = symbolic(eb, 30);
    in[0].d[2] = symbolic(eb, 45);
    in[0].d[3] = symbolic(eb, 288);
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) == 0 && out.d[1] == in[0].d[1]
            && out.d[2] == in[0].d[2] && !out.d[3]->isConstant() && valueOf(out.d[3]) == 96,
        "fused: symbolic H, W, 3C: output (B, H, W, 3C / 3)");
    in[0].d[3] = eb.constant(100);
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("not divisible by 3 * num_heads = 9"),
        "fused: 3C not divisible by 3 * num_heads refused");
    in[0].d[3] = eb.constant(288);
    in[0].nbDims = 3;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("4-D (B, H, W, 3C)"),
        "fused: a 3-D qkv refused, naming the map layout");
    in[0].nbDims = 4;
    in[2].nbDims = 2;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 3, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("'pad_row' must be 1-D"),
        "fused: a 2-D pad row refused");
    in[2].nbDims = 1;
    gLogger.messages.clear();
    check(build(p)->getOutputShapes(in, 2, nullptr, 0, &out, 1, eb) != 0 && gLogger.saw("3 inputs"),
        "fused: 2 inputs refused");
    delete p;

    // 3D: (B, T, H, W, 3C) -> (B, T, H, W, C).
    Fields f3;
    f3.i("num_heads", {2}).i("window_size", {2, 7, 7}).i("shift_size", {1, 3, 3}).i("pad_first", {1}).f("scale", 0.5F);
    IPluginV3* q = creator(kOp)->createPlugin("fused3d", f3.get(), TensorRTPhase::kBUILD);
    check(q != nullptr, "fused 3D: created");
    if (q == nullptr)
    {
        return;
    }
    DimsExprs in3[3]{};
    in3[0].nbDims = 5;
    in3[0].d[0] = symbolic(eb, 1);
    in3[0].d[1] = symbolic(eb, 5);
    in3[0].d[2] = eb.constant(20);
    in3[0].d[3] = eb.constant(20);
    in3[0].d[4] = eb.constant(96);
    in3[1].nbDims = 3;
    in3[1].d[0] = eb.constant(2);
    in3[1].d[1] = eb.constant(98);
    in3[1].d[2] = eb.constant(98);
    in3[2].nbDims = 1;
    in3[2].d[0] = eb.constant(96);
    check(build(q)->getOutputShapes(in3, 3, nullptr, 0, &out, 1, eb) == 0 && out.nbDims == 5
            && valueOf(out.d[1]) == 5 && out.d[4]->getConstantValue() == 32,
        "fused 3D: output (B, T, 20, 20, 32) with a dense bias");
    delete q;
}

void testFormatsAndConfigure()
{
    Fields good = fields2d();
    IPluginV3* p = creator(kOp)->createPlugin("fused", good.get(), TensorRTPhase::kBUILD);
    if (p == nullptr)
    {
        return;
    }
    for (DataType type : {DataType::kFLOAT, DataType::kHALF})
    {
        for (DataType biasType : {DataType::kFLOAT, DataType::kHALF})
        {
            DynamicPluginTensorDesc io[4] = {desc(type, {2, 56, 56, 288}), desc(biasType, {169, 3}),
                desc(type, {288}), desc(type, {2, 56, 56, 96})};
            bool all = true;
            for (int32_t pos = 0; pos < 4; ++pos)
            {
                all = all && build(p)->supportsFormatCombination(pos, io, 3, 1);
            }
            check(all, std::string("fused: formats qkv/pad/out ") + (type == DataType::kHALF ? "fp16" : "fp32")
                    + ", bias " + (biasType == DataType::kHALF ? "fp16" : "fp32"));
            check(build(p)->configurePlugin(io, 3, io + 3, 1) == 0, "fused: configurePlugin, static sizes");
        }
    }
    DynamicPluginTensorDesc io[4] = {desc(DataType::kFLOAT, {2, 56, 56, 288}), desc(DataType::kFLOAT, {169, 3}),
        desc(DataType::kHALF, {288}), desc(DataType::kFLOAT, {2, 56, 56, 96})};
    check(!build(p)->supportsFormatCombination(2, io, 3, 1), "fused: a pad row of another type than qkv refused");
    io[2] = desc(DataType::kFLOAT, {288});
    io[3] = desc(DataType::kHALF, {2, 56, 56, 96});
    check(!build(p)->supportsFormatCombination(3, io, 3, 1), "fused: an output of another type than qkv refused");
    io[3] = desc(DataType::kFLOAT, {2, 56, 56, 96});
    io[0] = desc(DataType::kINT8, {2, 56, 56, 288});
    check(!build(p)->supportsFormatCombination(0, io, 3, 1), "fused: int8 qkv refused");
    io[0] = desc(DataType::kFLOAT, {2, 56, 56, 288}, TensorFormat::kHWC8);
    check(!build(p)->supportsFormatCombination(0, io, 3, 1), "fused: a non-linear format refused");
    io[0] = desc(DataType::kFLOAT, {2, 56, 56, 288});
    io[1] = desc(DataType::kFLOAT, {169});
    check(!build(p)->supportsFormatCombination(1, io, 3, 1), "fused: a 1-D bias refused");

    // Any size: a profile over B, H and W.
    DynamicPluginTensorDesc any[4] = {ranged(DataType::kHALF, {-1, -1, -1, 288}, {1, 1, 1, 288}, {8, 512, 512, 288}),
        desc(DataType::kFLOAT, {169, 3}), desc(DataType::kHALF, {288}), desc(DataType::kHALF, {-1, -1, -1, 96})};
    check(build(p)->configurePlugin(any, 3, any + 3, 1) == 0, "fused: configurePlugin with a B x H x W profile");
    DynamicPluginTensorDesc bad[4] = {any[0], any[1], desc(DataType::kHALF, {96}), any[3]};
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) != 0 && gLogger.saw("'pad_row' must be (3C,) = (288,)"),
        "fused: a pad row of the wrong length refused");
    bad[2] = desc(DataType::kFLOAT, {288});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) != 0 && gLogger.saw("'pad_row' type"),
        "fused: a pad row of another type refused");
    bad[2] = any[2];
    bad[1] = desc(DataType::kFLOAT, {169, 4});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) != 0 && gLogger.saw("bias_table' must be"),
        "fused: a bias table of the wrong shape refused");
    bad[1] = desc(DataType::kFLOAT, {3, 49, 49});
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) == 0, "fused: a dense (heads, N, N) bias accepted");
    bad[1] = any[1];
    bad[0] = ranged(DataType::kHALF, {-1, -1, -1, 288}, {1, 1, 1, 288}, {8, 65536, 65536, 288});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) != 0 && gLogger.saw("profile's maximum"),
        "fused: a profile maximum beyond the int32 geometry refused, naming the maximum");
    // head_dim 130 (3C = 3 * 3 * 130): beyond the kernel's 128.
    bad[0] = desc(DataType::kHALF, {1, 7, 7, 1170});
    bad[2] = desc(DataType::kHALF, {1170});
    bad[3] = desc(DataType::kHALF, {1, 7, 7, 390});
    gLogger.messages.clear();
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) != 0 && gLogger.saw("head_dim (C / num_heads) must be in [1, 128]"),
        "fused: head_dim 130 refused at configurePlugin");
    // The largest head_dim with the table staged: still a plan within 48 KiB.
    bad[0] = desc(DataType::kHALF, {1, 7, 7, 1152});
    bad[2] = desc(DataType::kHALF, {1152});
    bad[3] = desc(DataType::kHALF, {1, 7, 7, 384});
    check(build(p)->configurePlugin(bad, 3, bad + 3, 1) == 0, "fused: head_dim 128 has a shared-memory plan");

    // enqueue checks before any launch (no GPU here: a launch would fail anyway).
    PluginTensorDesc rin[3] = {plainDesc(DataType::kFLOAT, {1, 7, 7, 288}), plainDesc(DataType::kFLOAT, {169, 3}),
        plainDesc(DataType::kHALF, {288})};
    PluginTensorDesc rout = plainDesc(DataType::kFLOAT, {1, 7, 7, 96});
    float dummy = 0.0F;
    void const* inputs[] = {&dummy, &dummy, &dummy};
    void* outputs[] = {&dummy};
    gLogger.messages.clear();
    check(runtime(p)->enqueue(rin, &rout, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("pad_row float16"),
        "fused: enqueue refuses a pad row of another type");
    rin[2] = plainDesc(DataType::kFLOAT, {96});
    gLogger.messages.clear();
    check(runtime(p)->enqueue(rin, &rout, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("enqueue: input 'pad_row'"),
        "fused: enqueue refuses a pad row of the wrong length");
    rin[2] = plainDesc(DataType::kFLOAT, {288});
    rin[0] = plainDesc(DataType::kFLOAT, {1, -1, 7, 288});
    gLogger.messages.clear();
    check(runtime(p)->enqueue(rin, &rout, inputs, outputs, nullptr, nullptr) != 0 && gLogger.saw("out of range"),
        "fused: enqueue refuses an unknown dim");
    delete p;
}

} // namespace

//! Called by swin_trt_plugin_host_test's main.
void testFusedAttention()
{
    testCreator();
    testShapes();
    testFormatsAndConfigure();
}
