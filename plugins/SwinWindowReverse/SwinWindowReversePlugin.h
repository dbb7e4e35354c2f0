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
    SwinWindowReversePlugin(int32_t const* window, int32_t const* shift, int32_t padFirst, int32_t height, int32_t width);

    nvinfer1::IPluginV3* clone() noexcept override;

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;

protected:
    //! (B * nW, N, C) with N and nW of this map.
    std::string checkInput(nvinfer1::Dims const& dims) const override;

    cudaError_t launch(nvinfer1::Dims const& dims, DType type, void const* input, void* output,
        cudaStream_t stream) const override;

private:

    int32_t mWindow[2];
    int32_t mShift[2];
    int32_t mPadFirst;
    int32_t mHeight;
    int32_t mWidth;
    WindowGeometry mGeometry; // checked by the creator (checkWindowGeometry): every count fits in int32
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
