// TensorRT IPluginV3 plugin SwinFusedWindowAttention (namespace "swin_trt", version "1"): a Swin block's
// partition -> attention -> reverse as one node over the token-major qkv map.
// Contract: plugins/SwinFusedWindowAttention/README.md.
#ifndef SWIN_TRT_SWIN_FUSED_WINDOW_ATTENTION_PLUGIN_H
#define SWIN_TRT_SWIN_FUSED_WINDOW_ATTENTION_PLUGIN_H

#include "plugin_common.h"
#include "swin_index.h"

#include <string>
#include <vector>

namespace swin_trt
{
namespace plugin
{

constexpr char const* kFusedWindowAttentionName = "SwinFusedWindowAttention";

//! Inputs: qkv map (B, [T,] H, W, 3C), bias (table (R, num_heads) or dense (num_heads, N, N)), pad row (3C,);
//! output: context map (B, [T,] H, W, C). The size comes from input 0's own dims (any may be dynamic).
class SwinFusedWindowAttentionPlugin final : public SwinPluginBase
{
public:
    //! `headScale`: empty for V1 attention; cosine mode (Swin V2) otherwise, one scale per head.
    SwinFusedWindowAttentionPlugin(
        int32_t numHeads, WindowFields const& fields, int32_t padFirst, float scale, std::vector<float> headScale);

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
    //! "(B, H, W, 3C)" or "(B, T, H, W, 3C)", for messages.
    char const* qkvLayout() const
    {
        return mFields.rank == 3 ? "(B, T, H, W, 3C)" : "(B, H, W, 3C)";
    }

    //! Empty when the dims of qkv, the bias (table or dense) and the pad row fit this op, else the message. A dim
    //! of -1 is not known yet and passes.
    std::string checkInputs(nvinfer1::Dims const* dims) const;

    int32_t mNumHeads;
    WindowFields mFields; // window_size / shift_size, serialized as given (2 or 3 ints)
    int32_t mPadFirst;    // 1: pad, then roll the padded grid; 0: roll the map, then pad (timm; 2D only)
    float mScale;
    int32_t mCosine;               // 1: scaled cosine attention (Swin V2)
    std::vector<float> mHeadScale; // cosine mode: num_heads scales (never resized: a serialized field points here)
};

class SwinFusedWindowAttentionCreator final : public SwinPluginCreatorBase
{
public:
    SwinFusedWindowAttentionCreator();

    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
};

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_SWIN_FUSED_WINDOW_ATTENTION_PLUGIN_H
