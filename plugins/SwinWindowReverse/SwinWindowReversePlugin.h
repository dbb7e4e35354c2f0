// TensorRT IPluginV3 plugin SwinWindowReverse (namespace "swin_trt", version "1").
// Contract: plugins/SwinWindowReverse/README.md.
#ifndef SWIN_TRT_SWIN_WINDOW_REVERSE_PLUGIN_H
#define SWIN_TRT_SWIN_WINDOW_REVERSE_PLUGIN_H

#include "plugin_common.h"
#include "swin_index.h"

namespace swin_trt
{
namespace plugin
{

constexpr char const* kWindowReverseName = "SwinWindowReverse";

class SwinWindowReversePlugin final : public SwinDataMovementPlugin
{
public:
    //! frames/height/width: the output size (0: from the feature map); a 2D node has frames = 1 when sized.
    SwinWindowReversePlugin(
        WindowFields const& fields, int32_t padFirst, int32_t frames, int32_t height, int32_t width);

    nvinfer1::IPluginV3* clone() noexcept override;

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;

protected:
    //! With height/width (3D: and frames): windows only. Without: windows and the feature map (its dims give H and W).
    int32_t numInputs() const override
    {
        return hasSizeAttributes() ? 1 : 2;
    }

    std::string describeInputs() const override;

    //! windows (B * nW, N, C) with N and nW of the map; feature_map (B, [T,] H, W, C') with its sizes in range.
    std::string checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const override;

    cudaError_t launch(nvinfer1::Dims const* dims, int32_t nbInputs, DType type, void const* input, void* output,
        cudaStream_t stream, float int8Ratio) const override;

private:
    //! A graph of one size (attributes height/width), or any size (0, 0: the feature-map input).
    bool hasSizeAttributes() const
    {
        return mHeight > 0;
    }

    //! The geometry of the run: from the attributes, or from the feature map's dims (checked by checkInputs).
    WindowGeometry geometry(nvinfer1::Dims const* dims, int32_t nbInputs) const;

    WindowFields mFields; // window_size / shift_size, serialized as given (2 or 3 ints)
    int32_t mPadFirst;
    int32_t mFrames; // 3D windows only (a 2D node's is 1 when sized, and not serialized); 0: from the feature map
    int32_t mHeight; // 0: from the feature map
    int32_t mWidth;
    WindowGeometry mGeometry; // with size attributes: checked by the creator (every count fits in int32)
};

class SwinWindowReverseCreator final : public SwinPluginCreatorBase
{
public:
    SwinWindowReverseCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_SWIN_WINDOW_REVERSE_PLUGIN_H
