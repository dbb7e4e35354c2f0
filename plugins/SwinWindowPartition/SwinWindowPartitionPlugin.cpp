#include "SwinWindowPartitionPlugin.h"

#include "swin_index.h"
#include "swin_kernels.h"

#include <string>

namespace swin_trt
{
namespace plugin
{

using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

SwinWindowPartitionPlugin::SwinWindowPartitionPlugin(int32_t const* window, int32_t const* shift, int32_t padFirst)
    : SwinDataMovementPlugin(kWindowPartitionName)
    , mWindow{window[0], window[1]}
    , mShift{shift[0], shift[1]}
    , mPadFirst(padFirst)
{
    serializeField("window_size", mWindow, PluginFieldType::kINT32, 2);
    serializeField("shift_size", mShift, PluginFieldType::kINT32, 2);
    serializeField("pad_first", &mPadFirst, PluginFieldType::kINT32, 1);
}

nvinfer1::IPluginV3* SwinWindowPartitionPlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>(
        "clone", nullptr, [&] { return new SwinWindowPartitionPlugin(mWindow, mShift, mPadFirst); });
}

std::string SwinWindowPartitionPlugin::checkMap(int64_t H, int64_t W) const
{
    return checkMapSize("x", H, W, mWindow);
}

int32_t SwinWindowPartitionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", -1, [&]() -> int32_t {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 1 || nbOutputs != 1)
        {
            return fail("expects 1 input and 1 output");
        }
        nvinfer1::DimsExprs const& x = inputs[0];
        if (x.nbDims != 4)
        {
            return fail("input 'x' must be 4-D (B, H, W, C), got " + std::to_string(x.nbDims) + "-D");
        }
        using nvinfer1::DimensionOperation;
        outputs[0].nbDims = 3;
        outputs[0].d[1] = exprBuilder.constant(static_cast<int64_t>(mWindow[0]) * mWindow[1]);
        outputs[0].d[2] = x.d[3];
        if (x.d[1]->isConstant() && x.d[2]->isConstant())
        {
            // A graph of one size: the windows per image are a constant, checked now.
            int64_t const H = x.d[1]->getConstantValue();
            int64_t const W = x.d[2]->getConstantValue();
            std::string const why = checkMap(H, W);
            if (!why.empty())
            {
                return fail(why);
            }
            WindowGeometry const g = makeWindowGeometry(static_cast<int32_t>(H), static_cast<int32_t>(W), mWindow[0],
                mWindow[1], mShift[0], mShift[1], mPadFirst);
            outputs[0].d[0] = exprBuilder.operation(DimensionOperation::kPROD, *x.d[0], *exprBuilder.constant(g.nW));
            return 0;
        }
        // Any size: nW = ceil(H / wh) * ceil(W / ww) of the input's own dims (ranges: configurePlugin, enqueue).
        nvinfer1::IDimensionExpr const* windows = exprBuilder.operation(DimensionOperation::kPROD,
            *exprBuilder.operation(DimensionOperation::kCEIL_DIV, *x.d[1], *exprBuilder.constant(mWindow[0])),
            *exprBuilder.operation(DimensionOperation::kCEIL_DIV, *x.d[2], *exprBuilder.constant(mWindow[1])));
        outputs[0].d[0] = exprBuilder.operation(DimensionOperation::kPROD, *x.d[0], *windows);
        return 0;
    });
}

std::string SwinWindowPartitionPlugin::checkInputs(nvinfer1::Dims const* dims, int32_t /*nbInputs*/) const
{
    nvinfer1::Dims const& d = dims[0];
    if (d.nbDims != 4)
    {
        return "input 'x' must be 4-D (B, H, W, C), got " + std::to_string(d.nbDims) + "-D";
    }
    return d.d[1] >= 0 && d.d[2] >= 0 ? checkMap(d.d[1], d.d[2]) : std::string();
}

cudaError_t SwinWindowPartitionPlugin::launch(nvinfer1::Dims const* dims, int32_t /*nbInputs*/, DType type,
    void const* input, void* output, cudaStream_t stream) const
{
    nvinfer1::Dims const& d = dims[0];
    return windowPartition(input, output, type, static_cast<int32_t>(d.d[0]), static_cast<int32_t>(d.d[1]),
        static_cast<int32_t>(d.d[2]), static_cast<int32_t>(d.d[3]), mWindow[0], mWindow[1], mShift[0], mShift[1],
        mPadFirst, stream);
}

// ---------------------------------------------------------------------------------------------------------

SwinWindowPartitionCreator::SwinWindowPartitionCreator()
    : SwinPluginCreatorBase(kWindowPartitionName,
        {PluginField("window_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("shift_size", nullptr, PluginFieldType::kINT32, 2),
            PluginField("pad_first", nullptr, PluginFieldType::kINT32, 1)})
{
}

nvinfer1::IPluginV3* SwinWindowPartitionCreator::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    return guardedCreate([&]() -> nvinfer1::IPluginV3* {
        FieldReader reader(fc, context(name));
        int32_t window[2];
        int32_t shift[2];
        int32_t padFirst = 0;
        if (!readWindowShift(reader, window, shift) || !reader.int1("pad_first", padFirst))
        {
            return nullptr;
        }
        if (padFirst != 0 && padFirst != 1)
        {
            reader.error("attribute 'pad_first' = " + std::to_string(padFirst) + " out of range: must be 0 or 1");
            return nullptr;
        }
        return new SwinWindowPartitionPlugin(window, shift, padFirst);
    });
}

} // namespace plugin
} // namespace swin_trt
