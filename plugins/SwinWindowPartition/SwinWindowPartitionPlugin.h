// TensorRT IPluginV3 plugin SwinWindowPartition (namespace "swin_trt", version "1").
// Contract: plugins/SwinWindowPartition/README.md.
#ifndef SWIN_TRT_SWIN_WINDOW_PARTITION_PLUGIN_H
#define SWIN_TRT_SWIN_WINDOW_PARTITION_PLUGIN_H

#include "plugin_common.h"

namespace swin_trt
{
namespace plugin
{

constexpr char const* kWindowPartitionName = "SwinWindowPartition";

class SwinWindowPartitionPlugin final : public SwinDataMovementPlugin
{
public:
    SwinWindowPartitionPlugin(WindowFields const& fields, int32_t padFirst);

    nvinfer1::IPluginV3* clone() noexcept override;

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;

protected:
    std::string describeInputs() const override
    {
        return "1 input (x)";
    }

    //! x (B, H, W, C), 3D windows (B, T, H, W, C): the sizes, where known, within the int32 geometry.
    std::string checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const override;

    cudaError_t launch(nvinfer1::Dims const* dims, int32_t nbInputs, DType type, void const* input, void* output,
        cudaStream_t stream, float int8Ratio) const override;

private:
    //! Empty when x's rank fits the window, else the message.
    std::string checkRank(int32_t nbDims) const;

    WindowFields mFields; // window_size / shift_size, serialized as given (2 or 3 ints)
    int32_t mPadFirst;
};

class SwinWindowPartitionCreator final : public SwinPluginCreatorBase
{
public:
    SwinWindowPartitionCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_SWIN_WINDOW_PARTITION_PLUGIN_H
