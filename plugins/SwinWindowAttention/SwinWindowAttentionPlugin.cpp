#include "SwinWindowAttentionPlugin.h"

#include "swin_index.h"
#include "swin_kernels.h"

#include <math.h>

#include <string>

namespace swin_trt
{
namespace plugin
{

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

SwinWindowAttentionPlugin::SwinWindowAttentionPlugin(
    int32_t numHeads, int32_t const* window, int32_t const* shift, int32_t height, int32_t width, float scale)
    : SwinPluginBase(kWindowAttentionName)
    , mNumHeads(numHeads)
    , mWindow{window[0], window[1]}
    , mShift{shift[0], shift[1]}
    , mHeight(height)
    , mWidth(width)
    , mScale(scale)
    , mGeometry(makeAttentionGeometry(height, width, window[0], window[1], shift[0], shift[1]))
{
    serializeField("num_heads", &mNumHeads, PluginFieldType::kINT32, 1);
    serializeField("window_size", mWindow, PluginFieldType::kINT32, 2);
    serializeField("shift_size", mShift, PluginFieldType::kINT32, 2);
    serializeField("height", &mHeight, PluginFieldType::kINT32, 1);
    serializeField("width", &mWidth, PluginFieldType::kINT32, 1);
    serializeField("scale", &mScale, PluginFieldType::kFLOAT32, 1);
}

nvinfer1::IPluginV3* SwinWindowAttentionPlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>("clone", nullptr,
        [&] { return new SwinWindowAttentionPlugin(mNumHeads, mWindow, mShift, mHeight, mWidth, mScale); });
}

int32_t SwinWindowAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", -1, [&]() -> int32_t {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 2 || nbOutputs != 1)
        {
            return fail("expects 2 inputs (qkv, bias_table) and 1 output");
        }
        nvinfer1::DimsExprs const& qkv = inputs[0];
        if (qkv.nbDims != 3)
        {
            return fail("input 'qkv' must be 3-D (B * nW, N, 3C), got " + std::to_string(qkv.nbDims) + "-D");
        }
        if (qkv.d[1]->isConstant() && qkv.d[1]->getConstantValue() != mGeometry.N)
        {
            return fail("dim 1 of input 'qkv' is " + std::to_string(qkv.d[1]->getConstantValue())
                + ", expected N = window_size[0] * window_size[1] = " + std::to_string(mGeometry.N));
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
    if (inOut == nullptr || nbInputs != 2 || nbOutputs != 1 || pos < 0 || pos > 2)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 2)
    {
        return desc.type == inOut[0].desc.type;
    }
    return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
}

std::string SwinWindowAttentionPlugin::checkQkv(nvinfer1::Dims const& qkv) const
{
    if (qkv.nbDims != 3 || qkv.d[1] != mGeometry.N || qkv.d[2] < 1)
    {
        return "input 'qkv' must be (B * nW, N, 3C) with static N = " + std::to_string(mGeometry.N)
            + " and static 3C";
    }
    if (qkv.d[2] % (3 * static_cast<int64_t>(mNumHeads)) != 0)
    {
        return "dim 2 of input 'qkv' (" + std::to_string(qkv.d[2]) + ") is not divisible by 3 * num_heads = "
            + std::to_string(3 * mNumHeads);
    }
    int64_t const headDim = qkv.d[2] / (3 * static_cast<int64_t>(mNumHeads));
    if (char const* why = checkWindowAttentionSupport(mGeometry.N, headDim > INT32_MAX ? -1 : static_cast<int32_t>(headDim)))
    {
        return std::string(why) + " (N = " + std::to_string(mGeometry.N) + ", head_dim = " + std::to_string(headDim)
            + ")";
    }
    // The mask of row r is that of window r % nW: only whole images (a multiple of nW rows) are masked right.
    if (qkv.d[0] >= 0 && qkv.d[0] % mGeometry.nW != 0)
    {
        return "dim 0 of input 'qkv' (" + std::to_string(qkv.d[0]) + ") is not a multiple of the "
            + std::to_string(mGeometry.nW) + " windows of the " + std::to_string(mHeight) + "x" + std::to_string(mWidth)
            + " grid: the batch must hold whole images";
    }
    return {};
}

int32_t SwinWindowAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", -1, [&]() -> int32_t {
        if (in == nullptr || out == nullptr || nbInputs != 2 || nbOutputs != 1)
        {
            return fail("expects 2 inputs (qkv, bias_table) and 1 output");
        }
        std::string const why = checkQkv(in[0].desc.dims);
        if (!why.empty())
        {
            return fail(why);
        }
        nvinfer1::Dims const& bias = in[1].desc.dims;
        int32_t const tableRows = biasTableSize(mWindow[0], mWindow[1]);
        if (bias.nbDims != 2 || (bias.d[0] >= 0 && bias.d[0] != tableRows)
            || (bias.d[1] >= 0 && bias.d[1] != mNumHeads))
        {
            return fail("input 'bias_table' must be ((2*wh-1)*(2*ww-1), num_heads) = (" + std::to_string(tableRows)
                + ", " + std::to_string(mNumHeads) + ")");
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
        nvinfer1::Dims const& d = inputDesc[0].dims;
        DType qkvType;
        DType biasType;
        if (!toKernelType(inputDesc[0].type, qkvType) || !toKernelType(inputDesc[1].type, biasType)
            || qkvType == DType::kINT8 || biasType == DType::kINT8)
        {
            return fail(std::string("enqueue: unsupported types qkv ") + typeName(inputDesc[0].type)
                + ", bias_table " + typeName(inputDesc[1].type) + " (need float32 or float16)");
        }
        std::string why = checkQkv(d);
        if (why.empty() && (d.d[0] < 0 || d.d[0] > INT32_MAX))
        {
            why = "dim 0 of input 'qkv' out of range";
        }
        if (!why.empty())
        {
            return fail("enqueue: " + why);
        }
        int32_t const headDim = static_cast<int32_t>(d.d[2] / (3 * static_cast<int64_t>(mNumHeads)));
        cudaError_t const status = windowAttention(inputs[0], qkvType, inputs[1], biasType, outputs[0],
            static_cast<int32_t>(d.d[0]), mNumHeads, headDim, mWindow[0], mWindow[1], mShift[0], mShift[1],
            mHeight, mWidth, mScale, stream);
        if (status != cudaSuccess)
        {
            return fail(std::string("kernel launch failed: ") + cudaGetErrorString(status));
        }
        return 0;
    });
}

// ---------------------------------------------------------------------------------------------------------

SwinWindowAttentionCreator::SwinWindowAttentionCreator()
    : SwinPluginCreatorBase(kWindowAttentionName,
        {PluginField("num_heads", nullptr, PluginFieldType::kINT32, 1),
            PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("height", nullptr, PluginFieldType::kINT32, 1),
            PluginField("width", nullptr, PluginFieldType::kINT32, 1),
            PluginField("scale", nullptr, PluginFieldType::kFLOAT32, 1)})
{
}

nvinfer1::IPluginV3* SwinWindowAttentionCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        int32_t numHeads = 0;
        int32_t window[2];
        int32_t shift[2];
        int32_t height = 0;
        int32_t width = 0;
        float scale = 0.0F;
        if (!reader.int1("num_heads", numHeads) || !readWindowShift(reader, window, shift)
            || !reader.int1("height", height) || !reader.int1("width", width) || !reader.float1("scale", scale))
        {
            return nullptr;
        }
        if (numHeads < 1 || numHeads > 65535)
        {
            reader.error("attribute 'num_heads' = " + std::to_string(numHeads) + " out of range: must be in [1, 65535]");
            return nullptr;
        }
        char const* why = checkWindowGeometry(height, width, window[0], window[1]);
        if (why == nullptr && (height % window[0] != 0 || width % window[1] != 0))
        {
            why = "they are the padded grid, positive multiples of window_size";
        }
        if (why != nullptr)
        {
            reader.error("attributes 'height' = " + std::to_string(height) + ", 'width' = " + std::to_string(width)
                + " with window_size = " + formatPair(window) + " out of range: " + why);
            return nullptr;
        }
        // Safe product: checkWindowGeometry bounds wh * ww by the padded grid, which fits in int32.
        if (char const* unsupported = checkWindowAttentionSupport(window[0] * window[1], 1))
        {
            reader.error(std::string("attribute 'window_size' = ") + formatPair(window) + " not supported: " + unsupported);
            return nullptr;
        }
        if (!(scale > 0.0F) || !isfinite(scale))
        {
            reader.error("attribute 'scale' = " + std::to_string(scale) + " out of range: must be finite and > 0");
            return nullptr;
        }
        return new SwinWindowAttentionPlugin(numHeads, window, shift, height, width, scale);
    });
}

} // namespace plugin
} // namespace swin_trt
