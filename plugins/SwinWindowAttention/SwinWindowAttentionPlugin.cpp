#include "SwinWindowAttentionPlugin.h"

#include "swin_index.h"
#include "swin_kernels.h"

#include <math.h>

#include <string>
#include <utility>
#include <vector>

namespace swin_trt
{
namespace plugin
{

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

SwinWindowAttentionPlugin::SwinWindowAttentionPlugin(int32_t numHeads, WindowFields const& fields, int32_t frames,
    int32_t height, int32_t width, float scale, std::vector<float> headScale)
    : SwinPluginBase(kWindowAttentionName)
    , mNumHeads(numHeads)
    , mFields(fields)
    , mFrames(frames)
    , mHeight(height)
    , mWidth(width)
    , mScale(scale)
    , mCosine(headScale.empty() ? 0 : 1)
    , mHeadScale(std::move(headScale))
    , mGeometry(makeAttentionGeometry3d(frames, height, width, fields.wt(), fields.wh(), fields.ww(), fields.st(),
          fields.sh(), fields.sw()))
{
    serializeField("num_heads", &mNumHeads, PluginFieldType::kINT32, 1);
    serializeField("window_size", mFields.window, PluginFieldType::kINT32, mFields.rank);
    serializeField("shift_size", mFields.shift, PluginFieldType::kINT32, mFields.rank);
    if (mFields.rank == 3) // a 2D node serializes exactly the fields it always had
    {
        serializeField("frames", &mFrames, PluginFieldType::kINT32, 1);
    }
    serializeField("height", &mHeight, PluginFieldType::kINT32, 1);
    serializeField("width", &mWidth, PluginFieldType::kINT32, 1);
    serializeField("scale", &mScale, PluginFieldType::kFLOAT32, 1);
    if (mCosine != 0) // a V1 node serializes exactly the fields it always had
    {
        serializeField("cosine", &mCosine, PluginFieldType::kINT32, 1);
        serializeField("head_scale", mHeadScale.data(), PluginFieldType::kFLOAT32, static_cast<int32_t>(mHeadScale.size()));
    }
}

nvinfer1::IPluginV3* SwinWindowAttentionPlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>("clone", nullptr, [&] {
        return new SwinWindowAttentionPlugin(mNumHeads, mFields, mFrames, mHeight, mWidth, mScale, mHeadScale);
    });
}

std::string SwinWindowAttentionPlugin::describeInputs() const
{
    if (numInputs() == 3)
    {
        return mFields.rank == 3 ? "3 inputs (qkv, bias, feature_map: a shifted node without frames/height/width "
                                   "takes its grid from the feature map)"
                                 : "3 inputs (qkv, bias_table, feature_map: a shifted node without height/width "
                                   "takes its grid from the feature map)";
    }
    return mFields.rank == 3 ? "2 inputs (qkv, bias: a shifted node with frames/height/width takes its grid from "
                               "them, an unshifted node needs none)"
                             : "2 inputs (qkv, bias_table: a shifted node with height/width takes its grid from "
                               "them, an unshifted node needs none)";
}

int32_t SwinWindowAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", -1, [&]() -> int32_t {
        if (inputs == nullptr || outputs == nullptr || nbInputs != numInputs() || nbOutputs != 1)
        {
            return fail("expects " + describeInputs() + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        nvinfer1::DimsExprs const& qkv = inputs[0];
        if (qkv.nbDims != 3)
        {
            return fail("input 'qkv' must be 3-D (B * nW, N, 3C), got " + std::to_string(qkv.nbDims) + "-D");
        }
        if (nbInputs == 3 && inputs[2].nbDims != mFields.rank + 2)
        {
            return fail("input 'feature_map' must be " + std::to_string(mFields.rank + 2) + "-D "
                + mFields.mapLayout() + ", got " + std::to_string(inputs[2].nbDims) + "-D");
        }
        if (inputs[1].nbDims != 2 && inputs[1].nbDims != 3)
        {
            return fail("input 1 must be the bias table, 2-D (R, num_heads), or a dense bias, 3-D (num_heads, N, N); "
                "got " + std::to_string(inputs[1].nbDims) + "-D");
        }
        int64_t const tokens = mFields.tokens();
        if (qkv.d[1]->isConstant() && qkv.d[1]->getConstantValue() != tokens)
        {
            return fail("dim 1 of input 'qkv' is " + std::to_string(qkv.d[1]->getConstantValue())
                + ", expected N = the product of window_size " + mFields.format(mFields.window) + " = "
                + std::to_string(tokens));
        }
        outputs[0].nbDims = 3;
        outputs[0].d[0] = qkv.d[0];
        outputs[0].d[1] = qkv.d[1];
        if (qkv.d[2]->isConstant())
        {
            int64_t const threeC = qkv.d[2]->getConstantValue();
            if (threeC % (3 * static_cast<int64_t>(mNumHeads)) != 0)
            {
                return fail("dim 2 of input 'qkv' (" + std::to_string(threeC)
                    + ") is not divisible by 3 * num_heads = " + std::to_string(3 * mNumHeads));
            }
            outputs[0].d[2] = exprBuilder.constant(threeC / 3);
        }
        else
        {
            outputs[0].d[2] = exprBuilder.operation(
                nvinfer1::DimensionOperation::kFLOOR_DIV, *qkv.d[2], *exprBuilder.constant(3));
        }
        return 0;
    });
}

bool SwinWindowAttentionPlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != numInputs() || nbOutputs != 1 || pos < 0 || pos > nbInputs)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (pos == 2 && nbInputs == 3)
    {
        return isFeatureMapFormat(desc); // dims only: float or int8, whatever qkv's type
    }
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == nbInputs)
    {
        return desc.type == inOut[0].desc.type;
    }
    if (pos == 1 && desc.dims.nbDims != 2 && desc.dims.nbDims != 3)
    {
        return false; // neither the table (R, num_heads) nor a dense bias (num_heads, N, N)
    }
    return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
}

AttentionGeometry SwinWindowAttentionPlugin::geometry(nvinfer1::Dims const* dims, int32_t nbInputs) const
{
    if (mHeight > 0)
    {
        return mGeometry;
    }
    WindowFields const& f = mFields;
    if (nbInputs == 3)
    {
        int64_t T, H, W;
        spatialDims(dims[2], T, H, W);
        WindowGeometry const g = makeWindowGeometry3d(static_cast<int32_t>(T), static_cast<int32_t>(H),
            static_cast<int32_t>(W), f.wt(), f.wh(), f.ww(), 0, 0, 0, 1);
        return makeAttentionGeometry3d(g.Tp, g.Hp, g.Wp, f.wt(), f.wh(), f.ww(), f.st(), f.sh(), f.sw());
    }
    return makeAttentionGeometry3d(f.wt(), f.wh(), f.ww(), f.wt(), f.wh(), f.ww(), f.st(), f.sh(), f.sw());
}

namespace
{

//! "HpxWp" or (3D) "TpxHpxWp", for messages.
std::string gridSize(AttentionGeometry const& g)
{
    return (g.wt > 1 || g.Tp > 1 ? std::to_string(g.Tp) + "x" : std::string()) + std::to_string(g.Hp) + "x"
        + std::to_string(g.Wp);
}

} // namespace

std::string SwinWindowAttentionPlugin::checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const
{
    nvinfer1::Dims const& qkv = dims[0];
    int64_t const tokens = mFields.tokens();
    if (qkv.nbDims != 3 || qkv.d[1] != tokens || qkv.d[2] < 1)
    {
        return "input 'qkv' must be (B * nW, N, 3C) with static N = " + std::to_string(tokens) + " and static 3C";
    }
    if (qkv.d[2] % (3 * static_cast<int64_t>(mNumHeads)) != 0)
    {
        return "dim 2 of input 'qkv' (" + std::to_string(qkv.d[2]) + ") is not divisible by 3 * num_heads = "
            + std::to_string(3 * mNumHeads);
    }
    int64_t const headDim = qkv.d[2] / (3 * static_cast<int64_t>(mNumHeads));
    if (char const* why = checkWindowAttentionSupport(static_cast<int32_t>(tokens), headDim > INT32_MAX ? -1 : static_cast<int32_t>(headDim)))
    {
        return std::string(why) + " (N = " + std::to_string(tokens) + ", head_dim = " + std::to_string(headDim) + ")";
    }
    std::string const bias = checkBias(dims[1]);
    if (!bias.empty())
    {
        return bias;
    }
    if (nbInputs == 3)
    {
        std::string why = checkFeatureMap(dims[2], mFields);
        if (!why.empty() || !spatialKnown(dims[2]))
        {
            return why; // a problem, or a grid not known yet
        }
    }
    // The mask of row r is that of window r % nW: only whole images (a multiple of nW rows) are masked right.
    AttentionGeometry const g = geometry(dims, nbInputs);
    if (nbInputs == 3 && qkv.d[0] >= 0 && dims[2].d[0] >= 0 && qkv.d[0] != dims[2].d[0] * g.nW)
    {
        int64_t T, H, W;
        spatialDims(dims[2], T, H, W);
        return "dim 0 of input 'qkv' (" + std::to_string(qkv.d[0]) + ") is not B * nW = "
            + std::to_string(dims[2].d[0]) + " * " + std::to_string(g.nW) + " for the "
            + (mFields.rank == 3 ? std::to_string(T) + "x" : std::string()) + std::to_string(H) + "x"
            + std::to_string(W) + " feature map (grid " + gridSize(g) + ")";
    }
    if (qkv.d[0] >= 0 && qkv.d[0] % g.nW != 0)
    {
        return "dim 0 of input 'qkv' (" + std::to_string(qkv.d[0]) + ") is not a multiple of the "
            + std::to_string(g.nW) + " windows of the " + gridSize(g) + " grid: the batch must hold whole images";
    }
    return {};
}

std::string SwinWindowAttentionPlugin::checkBias(nvinfer1::Dims const& bias) const
{
    return checkAttentionBias(bias, mFields, mNumHeads);
}

std::string checkAttentionBias(nvinfer1::Dims const& bias, WindowFields const& fields, int32_t numHeads)
{
    int64_t const tokens = fields.tokens();
    if (bias.nbDims == 3)
    {
        // Dense: added as is to every window's logits (a shrunk Video Swin window's bias, which no table of
        // its own offsets reproduces).
        if ((bias.d[0] >= 0 && bias.d[0] != numHeads) || (bias.d[1] >= 0 && bias.d[1] != tokens)
            || (bias.d[2] >= 0 && bias.d[2] != tokens))
        {
            return "input 'bias' is 3-D, a dense bias: it must be (num_heads, N, N) = (" + std::to_string(numHeads)
                + ", " + std::to_string(tokens) + ", " + std::to_string(tokens) + "), got (" + std::to_string(bias.d[0])
                + ", " + std::to_string(bias.d[1]) + ", " + std::to_string(bias.d[2]) + ")";
        }
        return {};
    }
    int32_t const tableRows = biasTableSize3d(fields.wt(), fields.wh(), fields.ww());
    if (bias.nbDims != 2 || (bias.d[0] >= 0 && bias.d[0] != tableRows) || (bias.d[1] >= 0 && bias.d[1] != numHeads))
    {
        char const* const rows = fields.rank == 3 ? "(2*wt-1)*(2*wh-1)*(2*ww-1)" : "(2*wh-1)*(2*ww-1)";
        return std::string("input 'bias_table' must be (") + rows + ", num_heads) = (" + std::to_string(tableRows)
            + ", " + std::to_string(numHeads) + "), or a dense bias (num_heads, N, N) = (" + std::to_string(numHeads)
            + ", " + std::to_string(tokens) + ", " + std::to_string(tokens) + ")";
    }
    return {};
}

int32_t SwinWindowAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", -1, [&]() -> int32_t {
        if (in == nullptr || out == nullptr || nbInputs != numInputs() || nbOutputs != 1)
        {
            return fail("expects " + describeInputs() + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        // The build-time dims (-1 where dynamic), then both ends of the optimization profile. The ends bound each
        // dim on its own, so whether dim 0 holds whole images is left to the run (-1 there).
        char const* const which[] = {"", "the profile's minimum: ", "the profile's maximum: "};
        for (int32_t k = 0; k < 3; ++k)
        {
            nvinfer1::Dims dims[3];
            for (int32_t i = 0; i < nbInputs; ++i)
            {
                dims[i] = k == 0 ? in[i].desc.dims : (k == 1 ? in[i].min : in[i].max);
                if (k > 0 && dims[i].nbDims > 0)
                {
                    dims[i].d[0] = -1;
                }
            }
            std::string const why = checkInputs(dims, nbInputs);
            if (!why.empty())
            {
                return fail(which[k] + why);
            }
        }
        if (out[0].desc.type != in[0].desc.type)
        {
            return fail("output type must equal the type of 'qkv'");
        }
        return 0;
    });
}

int32_t SwinWindowAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* /*outputDesc*/, void const* const* inputs, void* const* outputs,
    void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", -1, [&]() -> int32_t {
        if (inputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            return fail("enqueue: null descriptors or buffers");
        }
        int32_t const nbInputs = numInputs(); // TensorRT runs the node it configured
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            dims[i] = inputDesc[i].dims;
        }
        DType qkvType;
        DType biasType;
        if (!toKernelType(inputDesc[0].type, qkvType) || !toKernelType(inputDesc[1].type, biasType)
            || qkvType == DType::kINT8 || biasType == DType::kINT8)
        {
            return fail(std::string("enqueue: unsupported types qkv ") + typeName(inputDesc[0].type)
                + ", bias " + typeName(inputDesc[1].type) + " (need float32 or float16)");
        }
        std::string why;
        for (int32_t i = 0; why.empty() && i < nbInputs; ++i)
        {
            for (int32_t k = 0; k < dims[i].nbDims; ++k)
            {
                if (dims[i].d[k] < 0 || dims[i].d[k] > INT32_MAX)
                {
                    why = "dimension " + std::to_string(k) + " of input " + std::to_string(i) + " ("
                        + std::to_string(dims[i].d[k]) + ") out of range";
                }
            }
        }
        if (why.empty())
        {
            why = checkInputs(dims, nbInputs);
        }
        if (!why.empty())
        {
            return fail("enqueue: " + why);
        }
        AttentionGeometry const g = geometry(dims, nbInputs);
        int32_t const headDim = static_cast<int32_t>(dims[0].d[2] / (3 * static_cast<int64_t>(mNumHeads)));
        BiasForm const form = dims[1].nbDims == 3 ? BiasForm::kDENSE : BiasForm::kTABLE;
        // float16 I/O runs on tensor cores (swinWindowAttentionTensorCoreKernel.cu), float32 on CUDA cores
        // (swinWindowAttentionKernel.cu): the same arguments and contract (README, "Kernel").
        decltype(&windowAttentionTensorCore) const kernel = qkvType == DType::kFLOAT16
            ? &windowAttentionTensorCore
            : static_cast<decltype(&windowAttentionTensorCore)>(&windowAttention);
        cudaError_t const status = kernel(inputs[0], qkvType, inputs[1], biasType, form, outputs[0],
            static_cast<int32_t>(dims[0].d[0]), mNumHeads, headDim, g.wt, g.wh, g.ww, g.st, g.sh, g.sw, g.Tp, g.Hp,
            g.Wp, mScale, mCosine != 0 ? mHeadScale.data() : nullptr, stream);
        if (status != cudaSuccess)
        {
            return fail("kernel launch failed: " + cudaErrorText(status));
        }
        return 0;
    });
}

// ---------------------------------------------------------------------------------------------------------

//! Cosine mode's fields: `cosine` (0 or 1, default 0) and, iff it is 1, `head_scale` (num_heads values in
//! (0, 100]) with `scale` = 1. Fills `headScale` (empty for V1); false (logged) when a rule is broken.
bool readCosineFields(FieldReader& reader, int32_t numHeads, float scale, std::vector<float>& headScale)
{
    int32_t cosine = 0;
    if (!reader.optionalInt1("cosine", cosine, 0))
    {
        return false;
    }
    if (cosine != 0 && cosine != 1)
    {
        return reader.error("attribute 'cosine' = " + std::to_string(cosine) + " out of range: must be 0 (Swin V1 "
                            "attention) or 1 (scaled cosine attention, Swin V2)");
    }
    if (cosine == 0)
    {
        return !reader.has("head_scale")
            || reader.error("attribute 'head_scale' is given but 'cosine' is 0: head_scale is the per-head logit "
                            "scale of cosine attention; set cosine = 1 or drop head_scale");
    }
    if (!reader.has("head_scale"))
    {
        return reader.error("cosine = 1 needs attribute 'head_scale': num_heads = " + std::to_string(numHeads)
            + " floats, exp(min(logit_scale, log 100)) per head");
    }
    if (!reader.floats("head_scale", headScale))
    {
        return false;
    }
    if (static_cast<int64_t>(headScale.size()) != numHeads)
    {
        return reader.error("attribute 'head_scale' has " + std::to_string(headScale.size()) + " values, expected "
            + "num_heads = " + std::to_string(numHeads));
    }
    if (char const* why = checkCosineHeadScale(numHeads, headScale.data()))
    {
        for (size_t h = 0; h < headScale.size(); ++h)
        {
            if (!(headScale[h] > 0.0F && headScale[h] <= kMaxHeadScale))
            {
                return reader.error("attribute 'head_scale'[" + std::to_string(h) + "] = "
                    + std::to_string(headScale[h]) + " out of range: " + why);
            }
        }
        return reader.error(std::string("attribute 'head_scale': ") + why);
    }
    if (scale != 1.0F)
    {
        return reader.error("attribute 'scale' = " + std::to_string(scale) + " with cosine = 1: must be 1.0 (cosine "
                            "attention scales by head_scale; fold any other factor into it)");
    }
    return true;
}


SwinWindowAttentionCreator::SwinWindowAttentionCreator()
    : SwinPluginCreatorBase(kWindowAttentionName,
        {PluginField("num_heads", nullptr, PluginFieldType::kINT32, 1),
            PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("height", nullptr, PluginFieldType::kINT32, 1),
            PluginField("width", nullptr, PluginFieldType::kINT32, 1),
            PluginField("frames", nullptr, PluginFieldType::kINT32, 1), // 3D windows only
            PluginField("scale", nullptr, PluginFieldType::kFLOAT32, 1),
            PluginField("cosine", nullptr, PluginFieldType::kINT32, 1),
            // num_heads values; TensorRT's ONNX parser takes the length from the node's attribute
            PluginField("head_scale", nullptr, PluginFieldType::kFLOAT32, 1)})
{
}

nvinfer1::IPluginV3* SwinWindowAttentionCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        int32_t numHeads = 0;
        WindowFields fields;
        int32_t frames = 0;
        int32_t height = 0;
        int32_t width = 0;
        float scale = 0.0F;
        if (!reader.int1("num_heads", numHeads) || !readWindowShift(reader, fields)
            || !readOptionalSize3d(reader, fields, frames, height, width) || !reader.float1("scale", scale))
        {
            return nullptr;
        }
        if (numHeads < 1 || numHeads > 65535)
        {
            reader.error("attribute 'num_heads' = " + std::to_string(numHeads) + " out of range: must be in [1, 65535]");
            return nullptr;
        }
        // Without a size the grid comes from the feature map (checked per run), or is not needed (no shift).
        int32_t const wt = fields.wt(), wh = fields.wh(), ww = fields.ww();
        char const* why = checkWindowGeometry3d(
            frames > 0 ? frames : wt, height > 0 ? height : wh, width > 0 ? width : ww, wt, wh, ww);
        if (why == nullptr && (frames % wt != 0 || height % wh != 0 || width % ww != 0))
        {
            why = "they are the padded grid, positive multiples of window_size";
        }
        if (why != nullptr)
        {
            reader.error((fields.rank == 3 ? "attributes 'frames' = " + std::to_string(frames) + ", "
                                           : std::string("attributes "))
                + "'height' = " + std::to_string(height) + ", 'width' = " + std::to_string(width)
                + " with window_size = " + fields.format(fields.window) + " out of range: " + why);
            return nullptr;
        }
        // Safe product: checkWindowGeometry3d bounds the window by the padded grid, which fits in int32.
        if (char const* unsupported = checkWindowAttentionSupport(static_cast<int32_t>(fields.tokens()), 1))
        {
            reader.error("attribute 'window_size' = " + fields.format(fields.window) + " not supported: "
                + unsupported);
            return nullptr;
        }
        if (!(scale > 0.0F) || !isfinite(scale))
        {
            reader.error("attribute 'scale' = " + std::to_string(scale) + " out of range: must be finite and > 0");
            return nullptr;
        }
        std::vector<float> headScale;
        if (!readCosineFields(reader, numHeads, scale, headScale))
        {
            return nullptr;
        }
        return new SwinWindowAttentionPlugin(numHeads, fields, frames, height, width, scale, std::move(headScale));
    });
}

} // namespace plugin
} // namespace swin_trt
