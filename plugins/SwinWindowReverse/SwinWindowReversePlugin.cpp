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
    WindowFields const& fields, int32_t padFirst, int32_t frames, int32_t height, int32_t width)
    : SwinDataMovementPlugin(kWindowReverseName)
    , mFields(fields)
    , mPadFirst(padFirst)
    , mFrames(frames)
    , mHeight(height)
    , mWidth(width)
    , mGeometry(makeWindowGeometry3d(frames, height, width, fields.wt(), fields.wh(), fields.ww(), fields.st(),
          fields.sh(), fields.sw(), padFirst))
{
    serializeField("window_size", mFields.window, PluginFieldType::kINT32, mFields.rank);
    serializeField("shift_size", mFields.shift, PluginFieldType::kINT32, mFields.rank);
    serializeField("pad_first", &mPadFirst, PluginFieldType::kINT32, 1);
    if (mFields.rank == 3) // a 2D node serializes exactly the fields it always had
    {
        serializeField("frames", &mFrames, PluginFieldType::kINT32, 1);
    }
    serializeField("height", &mHeight, PluginFieldType::kINT32, 1);
    serializeField("width", &mWidth, PluginFieldType::kINT32, 1);
}

nvinfer1::IPluginV3* SwinWindowReversePlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>(
        "clone", nullptr, [&] { return new SwinWindowReversePlugin(mFields, mPadFirst, mFrames, mHeight, mWidth); });
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
        int64_t const tokens = mFields.tokens();
        if (windows.d[1]->isConstant() && windows.d[1]->getConstantValue() != tokens)
        {
            return fail("dim 1 of input 'windows' is " + std::to_string(windows.d[1]->getConstantValue())
                + ", expected N = the product of window_size " + mFields.format(mFields.window) + " = "
                + std::to_string(tokens));
        }
        int32_t const rank = mFields.rank + 2; // (B, H, W, C) or (B, T, H, W, C)
        outputs[0].nbDims = rank;
        outputs[0].d[rank - 1] = windows.d[2];
        if (!hasSizeAttributes())
        {
            // Any size: the feature map's (B, [T,] H, W), passed through (symbolic or not).
            nvinfer1::DimsExprs const& map = inputs[1];
            if (map.nbDims != rank)
            {
                return fail("input 'feature_map' must be " + std::to_string(rank) + "-D " + mFields.mapLayout()
                    + ", got " + std::to_string(map.nbDims) + "-D");
            }
            for (int32_t i = 0; i < rank - 1; ++i)
            {
                outputs[0].d[i] = map.d[i];
            }
            return 0;
        }
        outputs[0].d[0] = exprBuilder.operation(
            nvinfer1::DimensionOperation::kFLOOR_DIV, *windows.d[0], *exprBuilder.constant(mGeometry.nW));
        if (rank == 5)
        {
            outputs[0].d[1] = exprBuilder.constant(mFrames);
        }
        outputs[0].d[rank - 3] = exprBuilder.constant(mHeight);
        outputs[0].d[rank - 2] = exprBuilder.constant(mWidth);
        return 0;
    });
}

std::string SwinWindowReversePlugin::describeInputs() const
{
    if (mFields.rank == 3)
    {
        return hasSizeAttributes() ? "1 input (windows: its size comes from the attributes frames/height/width)"
                                   : "2 inputs (windows, feature_map: without frames/height/width the size comes from "
                                     "the feature map)";
    }
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
    int64_t T, H, W;
    spatialDims(dims[1], T, H, W);
    return makeWindowGeometry3d(static_cast<int32_t>(T), static_cast<int32_t>(H), static_cast<int32_t>(W),
        mFields.wt(), mFields.wh(), mFields.ww(), mFields.st(), mFields.sh(), mFields.sw(), mPadFirst);
}

namespace
{

//! "HxW" or (3D) "TxHxW", for messages.
std::string mapSize(WindowGeometry const& g)
{
    return (g.wt > 1 || g.T > 1 ? std::to_string(g.T) + "x" : std::string()) + std::to_string(g.H) + "x"
        + std::to_string(g.W);
}

} // namespace

std::string SwinWindowReversePlugin::checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const
{
    nvinfer1::Dims const& d = dims[0];
    if (d.nbDims != 3)
    {
        return "input 'windows' must be 3-D (B * nW, N, C)";
    }
    int64_t const tokens = mFields.tokens();
    if (d.d[1] >= 0 && d.d[1] != tokens)
    {
        return "dim 1 of input 'windows' is " + std::to_string(d.d[1]) + ", expected N = " + std::to_string(tokens);
    }
    if (nbInputs == 2)
    {
        std::string why = checkFeatureMap(dims[1], mFields);
        if (!why.empty() || !spatialKnown(dims[1]))
        {
            return why; // a problem, or a size not known yet
        }
    }
    WindowGeometry const g = geometry(dims, nbInputs);
    if (nbInputs == 2 && d.d[0] >= 0 && dims[1].d[0] >= 0 && d.d[0] != dims[1].d[0] * g.nW)
    {
        return "dim 0 of input 'windows' (" + std::to_string(d.d[0]) + ") is not B * nW = " + std::to_string(dims[1].d[0])
            + " * " + std::to_string(g.nW) + " for the " + mapSize(g) + " feature map";
    }
    if (d.d[0] >= 0 && d.d[0] % g.nW != 0)
    {
        return "dim 0 of input 'windows' (" + std::to_string(d.d[0]) + ") is not a multiple of the "
            + std::to_string(g.nW) + " windows of a " + mapSize(g) + " map";
    }
    return {};
}

cudaError_t SwinWindowReversePlugin::launch(nvinfer1::Dims const* dims, int32_t nbInputs, DType type,
    void const* input, void* output, cudaStream_t stream, float int8Ratio) const
{
    WindowGeometry const g = geometry(dims, nbInputs);
    return windowReverse(input, output, type, static_cast<int32_t>(dims[0].d[0] / g.nW), g.T, g.H, g.W,
        static_cast<int32_t>(dims[0].d[2]), g.wt, g.wh, g.ww, g.st, g.sh, g.sw, mPadFirst, stream, int8Ratio);
}

// ---------------------------------------------------------------------------------------------------------

SwinWindowReverseCreator::SwinWindowReverseCreator()
    : SwinPluginCreatorBase(kWindowReverseName,
        {PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("pad_first", nullptr, PluginFieldType::kINT32, 1),
            PluginField("height", nullptr, PluginFieldType::kINT32, 1),
            PluginField("width", nullptr, PluginFieldType::kINT32, 1),
            PluginField("frames", nullptr, PluginFieldType::kINT32, 1)}) // 3D windows only
{
}

nvinfer1::IPluginV3* SwinWindowReverseCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        WindowFields fields;
        int32_t padFirst = 0;
        int32_t frames = 0;
        int32_t height = 0;
        int32_t width = 0;
        if (!readWindowShift(reader, fields) || !reader.int1("pad_first", padFirst)
            || !checkPadFirst(reader, fields, padFirst) || !readOptionalSize3d(reader, fields, frames, height, width))
        {
            return nullptr;
        }
        // Without a size (a graph of any size) the node takes its size from input 1, checked per run.
        if (char const* why = height == 0
                ? nullptr
                : checkWindowGeometry3d(frames, height, width, fields.wt(), fields.wh(), fields.ww()))
        {
            reader.error((fields.rank == 3 ? "attributes 'frames' = " + std::to_string(frames) + ", "
                                           : std::string("attributes "))
                + "'height' = " + std::to_string(height) + ", 'width' = " + std::to_string(width)
                + " (the unpadded output size) with window_size " + fields.format(fields.window) + " out of range: "
                + why);
            return nullptr;
        }
        return new SwinWindowReversePlugin(fields, padFirst, frames, height, width);
    });
}

} // namespace plugin
} // namespace swin_trt
