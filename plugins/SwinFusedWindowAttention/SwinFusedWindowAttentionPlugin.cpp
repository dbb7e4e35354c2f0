#include "SwinFusedWindowAttentionPlugin.h"

#include "../SwinWindowAttention/SwinWindowAttentionPlugin.h" // checkAttentionBias, readCosineFields
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

SwinFusedWindowAttentionPlugin::SwinFusedWindowAttentionPlugin(
    int32_t numHeads, WindowFields const& fields, int32_t padFirst, float scale, std::vector<float> headScale)
    : SwinPluginBase(kFusedWindowAttentionName)
    , mNumHeads(numHeads)
    , mFields(fields)
    , mPadFirst(padFirst)
    , mScale(scale)
    , mCosine(headScale.empty() ? 0 : 1)
    , mHeadScale(std::move(headScale))
{
    serializeField("num_heads", &mNumHeads, PluginFieldType::kINT32, 1);
    serializeField("window_size", mFields.window, PluginFieldType::kINT32, mFields.rank);
    serializeField("shift_size", mFields.shift, PluginFieldType::kINT32, mFields.rank);
    serializeField("pad_first", &mPadFirst, PluginFieldType::kINT32, 1);
    serializeField("scale", &mScale, PluginFieldType::kFLOAT32, 1);
    if (mCosine != 0)
    {
        serializeField("cosine", &mCosine, PluginFieldType::kINT32, 1);
        serializeField("head_scale", mHeadScale.data(), PluginFieldType::kFLOAT32, static_cast<int32_t>(mHeadScale.size()));
    }
}

nvinfer1::IPluginV3* SwinFusedWindowAttentionPlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>("clone", nullptr, [&] {
        return new SwinFusedWindowAttentionPlugin(mNumHeads, mFields, mPadFirst, mScale, mHeadScale);
    });
}

namespace
{

constexpr char const* kInputs = "3 inputs (qkv map, bias, pad_row)";

} // namespace

int32_t SwinFusedWindowAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", -1, [&]() -> int32_t {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 3 || nbOutputs != 1)
        {
            return fail(std::string("expects ") + kInputs + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        nvinfer1::DimsExprs const& qkv = inputs[0];
        int32_t const rank = mFields.rank + 2;
        if (qkv.nbDims != rank)
        {
            return fail("input 'qkv' must be " + std::to_string(rank) + "-D " + qkvLayout() + " for window_size "
                + mFields.format(mFields.window) + ", got " + std::to_string(qkv.nbDims) + "-D");
        }
        if (inputs[1].nbDims != 2 && inputs[1].nbDims != 3)
        {
            return fail("input 1 must be the bias table, 2-D (R, num_heads), or a dense bias, 3-D (num_heads, N, N); "
                "got " + std::to_string(inputs[1].nbDims) + "-D");
        }
        if (inputs[2].nbDims != 1)
        {
            return fail("input 'pad_row' must be 1-D (3C,), got " + std::to_string(inputs[2].nbDims) + "-D");
        }
        outputs[0].nbDims = rank;
        for (int32_t k = 0; k + 1 < rank; ++k)
        {
            outputs[0].d[k] = qkv.d[k];
        }
        nvinfer1::IDimensionExpr const& channels = *qkv.d[rank - 1];
        if (channels.isConstant())
        {
            int64_t const threeC = channels.getConstantValue();
            if (threeC % (3 * static_cast<int64_t>(mNumHeads)) != 0)
            {
                return fail("dim " + std::to_string(rank - 1) + " of input 'qkv' (" + std::to_string(threeC)
                    + ") is not divisible by 3 * num_heads = " + std::to_string(3 * mNumHeads));
            }
            outputs[0].d[rank - 1] = exprBuilder.constant(threeC / 3);
        }
        else
        {
            outputs[0].d[rank - 1]
                = exprBuilder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, channels, *exprBuilder.constant(3));
        }
        return 0;
    });
}

bool SwinFusedWindowAttentionPlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != 3 || nbOutputs != 1 || pos < 0 || pos > nbInputs)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 2 || pos == 3)
    {
        return desc.type == inOut[0].desc.type; // pad row and context: the type of qkv
    }
    if (pos == 1 && desc.dims.nbDims != 2 && desc.dims.nbDims != 3)
    {
        return false; // neither the table (R, num_heads) nor a dense bias (num_heads, N, N)
    }
    return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
}

std::string SwinFusedWindowAttentionPlugin::checkInputs(nvinfer1::Dims const* dims) const
{
    nvinfer1::Dims const& qkv = dims[0];
    int32_t const rank = mFields.rank + 2;
    if (qkv.nbDims != rank || qkv.d[rank - 1] < 1)
    {
        return "input 'qkv' must be " + std::to_string(rank) + "-D " + qkvLayout() + " with static 3C";
    }
    int64_t const threeC = qkv.d[rank - 1];
    if (threeC % (3 * static_cast<int64_t>(mNumHeads)) != 0)
    {
        return "dim " + std::to_string(rank - 1) + " of input 'qkv' (" + std::to_string(threeC)
            + ") is not divisible by 3 * num_heads = " + std::to_string(3 * mNumHeads);
    }
    int64_t const tokens = mFields.tokens();
    int64_t const headDim = threeC / (3 * static_cast<int64_t>(mNumHeads));
    int32_t const headDim32 = headDim > INT32_MAX ? -1 : static_cast<int32_t>(headDim);
    if (char const* why = checkWindowAttentionSupport(static_cast<int32_t>(tokens), headDim32))
    {
        return std::string(why) + " (N = " + std::to_string(tokens) + ", head_dim = " + std::to_string(headDim) + ")";
    }
    // The shared-memory plan of this shape and bias form (the fused form runs the float32-core kernel for both
    // I/O types): refused here, at configurePlugin, never at enqueue.
    int32_t const biasRows = dims[1].nbDims == 3 ? 0 : biasTableSize3d(mFields.wt(), mFields.wh(), mFields.ww());
    if (windowAttentionSmemBytes(static_cast<int32_t>(tokens), headDim32, biasRows) == 0)
    {
        return "no launch plan of the attention kernel fits " + std::to_string(kAttentionSmemBudget / 1024)
            + " KiB of shared memory for N = " + std::to_string(tokens) + ", head_dim = " + std::to_string(headDim);
    }
    std::string const bias = checkAttentionBias(dims[1], mFields, mNumHeads);
    if (!bias.empty())
    {
        return bias;
    }
    nvinfer1::Dims const& padRow = dims[2];
    if (padRow.nbDims != 1 || (padRow.d[0] >= 0 && padRow.d[0] != threeC))
    {
        return "input 'pad_row' must be (3C,) = (" + std::to_string(threeC) + ",), got "
            + (padRow.nbDims == 1 ? "(" + std::to_string(padRow.d[0]) + ",)" : std::to_string(padRow.nbDims) + "-D");
    }
    if (!spatialKnown(qkv))
    {
        return {};
    }
    int64_t T, H, W;
    spatialDims(qkv, T, H, W);
    std::string const why = checkMapSize("qkv", T, H, W, mFields);
    if (!why.empty() || qkv.d[0] < 0)
    {
        return why;
    }
    // B * nW window rows are launched: they must fit in int32.
    WindowGeometry const g = makeWindowGeometry3d(static_cast<int32_t>(T), static_cast<int32_t>(H),
        static_cast<int32_t>(W), mFields.wt(), mFields.wh(), mFields.ww(), mFields.st(), mFields.sh(), mFields.sw(),
        mPadFirst);
    if (qkv.d[0] * static_cast<int64_t>(g.nW) > INT32_MAX)
    {
        return "input 'qkv' has B * nW = " + std::to_string(qkv.d[0]) + " * " + std::to_string(g.nW)
            + " windows, more than 2^31 - 1";
    }
    return {};
}

int32_t SwinFusedWindowAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in,
    int32_t nbInputs, nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", -1, [&]() -> int32_t {
        if (in == nullptr || out == nullptr || nbInputs != 3 || nbOutputs != 1)
        {
            return fail(std::string("expects ") + kInputs + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        // The build-time dims (-1 where dynamic), then both ends of the optimization profile.
        char const* const which[] = {"", "the profile's minimum: ", "the profile's maximum: "};
        for (int32_t k = 0; k < 3; ++k)
        {
            nvinfer1::Dims dims[3];
            for (int32_t i = 0; i < nbInputs; ++i)
            {
                dims[i] = k == 0 ? in[i].desc.dims : (k == 1 ? in[i].min : in[i].max);
            }
            std::string const why = checkInputs(dims);
            if (!why.empty())
            {
                return fail(which[k] + why);
            }
        }
        if (in[2].desc.type != in[0].desc.type)
        {
            return fail("input 'pad_row' type must equal the type of 'qkv'");
        }
        if (out[0].desc.type != in[0].desc.type)
        {
            return fail("output type must equal the type of 'qkv'");
        }
        return 0;
    });
}

int32_t SwinFusedWindowAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* /*outputDesc*/, void const* const* inputs, void* const* outputs,
    void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", -1, [&]() -> int32_t {
        if (inputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            return fail("enqueue: null descriptors or buffers");
        }
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < 3; ++i)
        {
            dims[i] = inputDesc[i].dims;
        }
        DType qkvType;
        DType biasType;
        if (!toKernelType(inputDesc[0].type, qkvType) || !toKernelType(inputDesc[1].type, biasType)
            || qkvType == DType::kINT8 || biasType == DType::kINT8 || inputDesc[2].type != inputDesc[0].type)
        {
            return fail(std::string("enqueue: unsupported types qkv ") + typeName(inputDesc[0].type) + ", bias "
                + typeName(inputDesc[1].type) + ", pad_row " + typeName(inputDesc[2].type)
                + " (need float32 or float16, pad_row of the type of qkv)");
        }
        std::string why;
        for (int32_t i = 0; why.empty() && i < 3; ++i)
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
            why = checkInputs(dims);
        }
        if (!why.empty())
        {
            return fail("enqueue: " + why);
        }
        nvinfer1::Dims const& qkv = dims[0];
        int64_t T, H, W;
        spatialDims(qkv, T, H, W);
        int32_t const headDim = static_cast<int32_t>(qkv.d[qkv.nbDims - 1] / (3 * static_cast<int64_t>(mNumHeads)));
        BiasForm const form = dims[1].nbDims == 3 ? BiasForm::kDENSE : BiasForm::kTABLE;
        WindowFields const& f = mFields;
        cudaError_t const status = fusedWindowAttention(inputs[0], qkvType, inputs[1], biasType, form, inputs[2],
            outputs[0], static_cast<int32_t>(qkv.d[0]), static_cast<int32_t>(T), static_cast<int32_t>(H),
            static_cast<int32_t>(W), mNumHeads, headDim, f.wt(), f.wh(), f.ww(), f.st(), f.sh(), f.sw(), mPadFirst,
            mScale, mCosine != 0 ? mHeadScale.data() : nullptr, stream);
        if (status != cudaSuccess)
        {
            return fail("kernel launch failed: " + cudaErrorText(status));
        }
        return 0;
    });
}

// ---------------------------------------------------------------------------------------------------------

SwinFusedWindowAttentionCreator::SwinFusedWindowAttentionCreator()
    : SwinPluginCreatorBase(kFusedWindowAttentionName,
        {PluginField("num_heads", nullptr, PluginFieldType::kINT32, 1),
            PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("pad_first", nullptr, PluginFieldType::kINT32, 1),
            PluginField("scale", nullptr, PluginFieldType::kFLOAT32, 1),
            PluginField("cosine", nullptr, PluginFieldType::kINT32, 1),
            // num_heads values; TensorRT's ONNX parser takes the length from the node's attribute
            PluginField("head_scale", nullptr, PluginFieldType::kFLOAT32, 1)})
{
}

nvinfer1::IPluginV3* SwinFusedWindowAttentionCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        for (char const* sized : {"frames", "height", "width"})
        {
            if (reader.has(sized))
            {
                reader.error(std::string("attribute '") + sized + "' is not a field of this op: the fused node takes "
                    "its size from input 0, the qkv map");
                return nullptr;
            }
        }
        int32_t numHeads = 0;
        WindowFields fields;
        int32_t padFirst = 0;
        float scale = 0.0F;
        if (!reader.int1("num_heads", numHeads) || !readWindowShift(reader, fields)
            || !reader.int1("pad_first", padFirst) || !checkPadFirst(reader, fields, padFirst)
            || !reader.float1("scale", scale))
        {
            return nullptr;
        }
        if (numHeads < 1 || numHeads > 65535)
        {
            reader.error("attribute 'num_heads' = " + std::to_string(numHeads) + " out of range: must be in [1, 65535]");
            return nullptr;
        }
        int32_t const wt = fields.wt(), wh = fields.wh(), ww = fields.ww();
        if (char const* why = checkWindowGeometry3d(wt, wh, ww, wt, wh, ww))
        {
            reader.error("attribute 'window_size' = " + fields.format(fields.window) + " out of range: " + why);
            return nullptr;
        }
        // Safe product: checkWindowGeometry3d bounds the window's positions, which fit in int32.
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
        return new SwinFusedWindowAttentionPlugin(numHeads, fields, padFirst, scale, std::move(headScale));
    });
}

} // namespace plugin
} // namespace swin_trt
