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

    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

private:
    //! Empty when (B * nW, N, C) dims fit this map (unknown dims, -1, pass), else the message.
    std::string checkWindows(nvinfer1::Dims const& d) const;

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
