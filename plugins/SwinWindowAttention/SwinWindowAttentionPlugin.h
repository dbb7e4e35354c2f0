// TensorRT IPluginV3 plugin SwinWindowAttention (namespace "swin_trt", version "1").
// Contract: plugins/SwinWindowAttention/README.md.
#ifndef SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H
#define SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H

#include "plugin_common.h"
#include "swin_index.h"

namespace swin_trt
{
namespace plugin
{

constexpr char const* kWindowAttentionName = "SwinWindowAttention";

class SwinWindowAttentionPlugin final : public SwinPluginBase
{
public:
    SwinWindowAttentionPlugin(int32_t numHeads, int32_t const* window, int32_t const* shift, int32_t height,
        int32_t width, float scale);

    nvinfer1::IPluginV3* clone() noexcept override;

    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;

    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

private:
    //! Empty when the qkv dims (-1 = not known yet) fit this op, else the message.
    std::string checkQkv(nvinfer1::Dims const& qkv) const;

    int32_t mNumHeads;
    int32_t mWindow[2];
    int32_t mShift[2];
    int32_t mHeight;
    int32_t mWidth;
    float mScale;
    AttentionGeometry mGeometry; // checked by the creator (checkWindowGeometry): every count fits in int32
};

class SwinWindowAttentionCreator final : public SwinPluginCreatorBase
{
public:
    SwinWindowAttentionCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H
