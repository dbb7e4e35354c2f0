#include "SwinWindowReversePlugin.h"

#include "swin_index.h"
#include "swin_kernels.h"

#include <string>

namespace swin_trt
{
namespace plugin
{

using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

SwinWindowReversePlugin::SwinWindowReversePlugin(
    int32_t const* window, int32_t const* shift, int32_t padFirst, int32_t height, int32_t width)
    : SwinDataMovementPlugin(kWindowReverseName)
    , mWindow{window[0], window[1]}
    , mShift{shift[0], shift[1]}
    , mPadFirst(padFirst)
    , mHeight(height)
    , mWidth(width)
    , mGeometry(makeWindowGeometry(height, width, window[0], window[1], shift[0], shift[1], padFirst))
{
    serializeField("window_size", mWindow, PluginFieldType::kINT32, 2);
    serializeField("shift_size", mShift, PluginFieldType::kINT32, 2);
    serializeField("pad_first", &mPadFirst, PluginFieldType::kINT32, 1);
    serializeField("height", &mHeight, PluginFieldType::kINT32, 1);
    serializeField("width", &mWidth, PluginFieldType::kINT32, 1);
}

nvinfer1::IPluginV3* SwinWindowReversePlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>(
        "clone", nullptr, [&] { return new SwinWindowReversePlugin(mWindow, mShift, mPadFirst, mHeight, mWidth); });
}

int32_t SwinWindowReversePlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", -1, [&]() -> int32_t {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 1 || nbOutputs != 1)
        {
            return fail("expects 1 input and 1 output");
        }
        nvinfer1::DimsExprs const& windows = inputs[0];
        if (windows.nbDims != 3)
        {
            return fail("input 'windows' must be 3-D (B * nW, N, C), got " + std::to_string(windows.nbDims) + "-D");
        }
        if (windows.d[1]->isConstant() && windows.d[1]->getConstantValue() != mGeometry.N)
        {
            return fail("dim 1 of input 'windows' is " + std::to_string(windows.d[1]->getConstantValue())
                + ", expected N = window_size[0] * window_size[1] = " + std::to_string(mGeometry.N));
        }
        outputs[0].nbDims = 4;
        outputs[0].d[0] = exprBuilder.operation(
            nvinfer1::DimensionOperation::kFLOOR_DIV, *windows.d[0], *exprBuilder.constant(mGeometry.nW));
        outputs[0].d[1] = exprBuilder.constant(mHeight);
        outputs[0].d[2] = exprBuilder.constant(mWidth);
        outputs[0].d[3] = windows.d[2];
        return 0;
    });
}

std::string SwinWindowReversePlugin::checkInput(nvinfer1::Dims const& d) const
{
    if (d.nbDims != 3)
    {
        return "input 'windows' must be 3-D (B * nW, N, C)";
    }
    if (d.d[1] >= 0 && d.d[1] != mGeometry.N)
    {
        return "dim 1 of input 'windows' is " + std::to_string(d.d[1]) + ", expected N = " + std::to_string(mGeometry.N);
    }
    if (d.d[0] >= 0 && d.d[0] % mGeometry.nW != 0)
    {
        return "dim 0 of input 'windows' (" + std::to_string(d.d[0]) + ") is not a multiple of the "
            + std::to_string(mGeometry.nW) + " windows of a " + std::to_string(mHeight) + "x" + std::to_string(mWidth)
            + " map";
    }
    return {};
}

cudaError_t SwinWindowReversePlugin::launch(
    nvinfer1::Dims const& d, DType type, void const* input, void* output, cudaStream_t stream) const
{
    return windowReverse(input, output, type, static_cast<int32_t>(d.d[0] / mGeometry.nW), mHeight, mWidth,
        static_cast<int32_t>(d.d[2]), mWindow[0], mWindow[1], mShift[0], mShift[1], mPadFirst, stream);
}

// ---------------------------------------------------------------------------------------------------------

SwinWindowReverseCreator::SwinWindowReverseCreator()
    : SwinPluginCreatorBase(kWindowReverseName,
        {PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("pad_first", nullptr, PluginFieldType::kINT32, 1),
            PluginField("height", nullptr, PluginFieldType::kINT32, 1),
            PluginField("width", nullptr, PluginFieldType::kINT32, 1)})
{
}

nvinfer1::IPluginV3* SwinWindowReverseCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        int32_t window[2];
        int32_t shift[2];
        int32_t padFirst = 0;
        int32_t height = 0;
        int32_t width = 0;
        if (!readWindowShift(reader, window, shift) || !reader.int1("pad_first", padFirst)
            || !reader.int1("height", height) || !reader.int1("width", width))
        {
            return nullptr;
        }
        if (padFirst != 0 && padFirst != 1)
        {
            reader.error("attribute 'pad_first' = " + std::to_string(padFirst) + " out of range: must be 0 or 1");
            return nullptr;
        }
        if (char const* why = checkWindowGeometry(height, width, window[0], window[1]))
        {
            reader.error("attributes 'height' = " + std::to_string(height) + ", 'width' = " + std::to_string(width)
                + " (the unpadded output size) with window_size " + formatPair(window) + " out of range: " + why);
            return nullptr;
        }
        return new SwinWindowReversePlugin(window, shift, padFirst, height, width);
    });
}

} // namespace plugin
} // namespace swin_trt
