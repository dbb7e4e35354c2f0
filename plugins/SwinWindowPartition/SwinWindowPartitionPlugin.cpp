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

SwinWindowPartitionPlugin::SwinWindowPartitionPlugin(WindowFields const& fields, int32_t padFirst)
    : SwinDataMovementPlugin(kWindowPartitionName)
    , mFields(fields)
    , mPadFirst(padFirst)
{
    serializeField("window_size", mFields.window, PluginFieldType::kINT32, mFields.rank);
    serializeField("shift_size", mFields.shift, PluginFieldType::kINT32, mFields.rank);
    serializeField("pad_first", &mPadFirst, PluginFieldType::kINT32, 1);
}

nvinfer1::IPluginV3* SwinWindowPartitionPlugin::clone() noexcept
{
    return guarded<nvinfer1::IPluginV3*>(
        "clone", nullptr, [&] { return new SwinWindowPartitionPlugin(mFields, mPadFirst); });
}

std::string SwinWindowPartitionPlugin::checkRank(int32_t nbDims) const
{
    if (nbDims == mFields.rank + 2)
    {
        return {};
    }
    return "input 'x' must be " + std::to_string(mFields.rank + 2) + "-D " + mFields.mapLayout() + " for window_size "
        + mFields.format(mFields.window) + ", got " + std::to_string(nbDims) + "-D";
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
        std::string const rank = checkRank(x.nbDims);
        if (!rank.empty())
        {
            return fail(rank);
        }
        using nvinfer1::DimensionOperation;
        int32_t const spatial = mFields.rank; // x.d[1 .. spatial] are (T,) H, W; x.d[spatial + 1] is C
        outputs[0].nbDims = 3;
        outputs[0].d[1] = exprBuilder.constant(mFields.tokens());
        outputs[0].d[2] = x.d[spatial + 1];
        bool constant = true;
        for (int32_t i = 1; i <= spatial; ++i)
        {
            constant = constant && x.d[i]->isConstant();
        }
        if (constant)
        {
            // A graph of one size: the windows per image are a constant, checked now.
            int64_t const T = spatial == 3 ? x.d[1]->getConstantValue() : 1;
            int64_t const H = x.d[spatial - 1]->getConstantValue();
            int64_t const W = x.d[spatial]->getConstantValue();
            std::string const why = checkMapSize("x", T, H, W, mFields);
            if (!why.empty())
            {
                return fail(why);
            }
            WindowGeometry const g = makeWindowGeometry3d(static_cast<int32_t>(T), static_cast<int32_t>(H),
                static_cast<int32_t>(W), mFields.wt(), mFields.wh(), mFields.ww(), mFields.st(), mFields.sh(),
                mFields.sw(), mPadFirst);
            outputs[0].d[0] = exprBuilder.operation(DimensionOperation::kPROD, *x.d[0], *exprBuilder.constant(g.nW));
            return 0;
        }
        // Any size: nW = the product of ceil(size / window) over the input's own spatial dims (ranges:
        // configurePlugin, enqueue).
        nvinfer1::IDimensionExpr const* windows = nullptr;
        for (int32_t i = 1; i <= spatial; ++i)
        {
            nvinfer1::IDimensionExpr const* along = exprBuilder.operation(
                DimensionOperation::kCEIL_DIV, *x.d[i], *exprBuilder.constant(mFields.window[i - 1]));
            windows = windows == nullptr ? along : exprBuilder.operation(DimensionOperation::kPROD, *windows, *along);
        }
        outputs[0].d[0] = exprBuilder.operation(DimensionOperation::kPROD, *x.d[0], *windows);
        return 0;
    });
}

std::string SwinWindowPartitionPlugin::checkInputs(nvinfer1::Dims const* dims, int32_t /*nbInputs*/) const
{
    nvinfer1::Dims const& d = dims[0];
    std::string const rank = checkRank(d.nbDims);
    if (!rank.empty() || !spatialKnown(d))
    {
        return rank;
    }
    int64_t T, H, W;
    spatialDims(d, T, H, W);
    return checkMapSize("x", T, H, W, mFields);
}

cudaError_t SwinWindowPartitionPlugin::launch(nvinfer1::Dims const* dims, int32_t /*nbInputs*/, DType type,
    void const* input, void* output, cudaStream_t stream, float int8Ratio) const
{
    nvinfer1::Dims const& d = dims[0];
    int64_t T, H, W;
    spatialDims(d, T, H, W);
    return windowPartition(input, output, type, static_cast<int32_t>(d.d[0]), static_cast<int32_t>(T),
        static_cast<int32_t>(H), static_cast<int32_t>(W), static_cast<int32_t>(d.d[d.nbDims - 1]), mFields.wt(),
        mFields.wh(), mFields.ww(), mFields.st(), mFields.sh(), mFields.sw(), mPadFirst, stream, int8Ratio);
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
        WindowFields fields;
        int32_t padFirst = 0;
        if (!readWindowShift(reader, fields) || !reader.int1("pad_first", padFirst)
            || !checkPadFirst(reader, fields, padFirst))
        {
            return nullptr;
        }
        return new SwinWindowPartitionPlugin(fields, padFirst);
    });
}

} // namespace plugin
} // namespace swin_trt
