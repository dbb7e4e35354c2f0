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
        if (inputs == nullptr || outputs == nullptr || nbInputs != numInputs() || nbOutputs != 1)
        {
            return fail("expects " + describeInputs() + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        nvinfer1::DimsExprs const& windows = inputs[0];
        if (windows.nbDims != 3)
        {
            return fail("input 'windows' must be 3-D (B * nW, N, C), got " + std::to_string(windows.nbDims) + "-D");
        }
        int64_t const tokens = static_cast<int64_t>(mWindow[0]) * mWindow[1];
        if (windows.d[1]->isConstant() && windows.d[1]->getConstantValue() != tokens)
        {
            return fail("dim 1 of input 'windows' is " + std::to_string(windows.d[1]->getConstantValue())
                + ", expected N = window_size[0] * window_size[1] = " + std::to_string(tokens));
        }
        outputs[0].nbDims = 4;
        outputs[0].d[3] = windows.d[2];
        if (!hasSizeAttributes())
        {
            // Any size: the feature map's (B, H, W), passed through (symbolic or not).
            nvinfer1::DimsExprs const& map = inputs[1];
            if (map.nbDims != 4)
            {
                return fail("input 'feature_map' must be 4-D (B, H, W, C), got " + std::to_string(map.nbDims) + "-D");
            }
            for (int32_t i = 0; i < 3; ++i)
            {
                outputs[0].d[i] = map.d[i];
            }
            return 0;
        }
        outputs[0].d[0] = exprBuilder.operation(
            nvinfer1::DimensionOperation::kFLOOR_DIV, *windows.d[0], *exprBuilder.constant(mGeometry.nW));
        outputs[0].d[1] = exprBuilder.constant(mHeight);
        outputs[0].d[2] = exprBuilder.constant(mWidth);
        return 0;
    });
}

std::string SwinWindowReversePlugin::describeInputs() const
{
    return hasSizeAttributes() ? "1 input (windows: its size comes from the attributes height/width)"
                               : "2 inputs (windows, feature_map: without height/width the size comes from the "
                                 "feature map)";
}

WindowGeometry SwinWindowReversePlugin::geometry(nvinfer1::Dims const* dims, int32_t nbInputs) const
{
    if (nbInputs == 1)
    {
        return mGeometry;
    }
    return makeWindowGeometry(static_cast<int32_t>(dims[1].d[1]), static_cast<int32_t>(dims[1].d[2]), mWindow[0],
        mWindow[1], mShift[0], mShift[1], mPadFirst);
}

std::string SwinWindowReversePlugin::checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const
{
    nvinfer1::Dims const& d = dims[0];
    if (d.nbDims != 3)
    {
        return "input 'windows' must be 3-D (B * nW, N, C)";
    }
    int64_t const tokens = static_cast<int64_t>(mWindow[0]) * mWindow[1];
    if (d.d[1] >= 0 && d.d[1] != tokens)
    {
        return "dim 1 of input 'windows' is " + std::to_string(d.d[1]) + ", expected N = " + std::to_string(tokens);
    }
    if (nbInputs == 2)
    {
        std::string why = checkFeatureMap(dims[1], mWindow);
        if (!why.empty() || dims[1].d[1] < 0 || dims[1].d[2] < 0)
        {
            return why; // a problem, or a size not known yet
        }
    }
    WindowGeometry const g = geometry(dims, nbInputs);
    if (nbInputs == 2 && d.d[0] >= 0 && dims[1].d[0] >= 0 && d.d[0] != dims[1].d[0] * g.nW)
    {
        return "dim 0 of input 'windows' (" + std::to_string(d.d[0]) + ") is not B * nW = " + std::to_string(dims[1].d[0])
            + " * " + std::to_string(g.nW) + " for the " + std::to_string(g.H) + "x" + std::to_string(g.W)
            + " feature map";
    }
    if (d.d[0] >= 0 && d.d[0] % g.nW != 0)
    {
        return "dim 0 of input 'windows' (" + std::to_string(d.d[0]) + ") is not a multiple of the "
            + std::to_string(g.nW) + " windows of a " + std::to_string(g.H) + "x" + std::to_string(g.W) + " map";
    }
    return {};
}

cudaError_t SwinWindowReversePlugin::launch(nvinfer1::Dims const* dims, int32_t nbInputs, DType type,
    void const* input, void* output, cudaStream_t stream) const
{
    WindowGeometry const g = geometry(dims, nbInputs);
    return windowReverse(input, output, type, static_cast<int32_t>(dims[0].d[0] / g.nW), g.H, g.W,
        static_cast<int32_t>(dims[0].d[2]), mWindow[0], mWindow[1], mShift[0], mShift[1], mPadFirst, stream);
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
            || !readOptionalSize(reader, height, width))
        {
            return nullptr;
        }
        if (padFirst != 0 && padFirst != 1)
        {
            reader.error("attribute 'pad_first' = " + std::to_string(padFirst) + " out of range: must be 0 or 1");
            return nullptr;
        }
        // Without height/width (a graph of any size) the node takes its size from input 1, checked per run.
        if (char const* why = height == 0 ? nullptr : checkWindowGeometry(height, width, window[0], window[1]))
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
