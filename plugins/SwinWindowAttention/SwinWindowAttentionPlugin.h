// TensorRT IPluginV3 plugin SwinWindowAttention (namespace "swin_trt", version "1").
// Contract: plugins/SwinWindowAttention/README.md.
#ifndef SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H
#define SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H

#include "plugin_common.h"
#include "swin_index.h"

#include <vector>

namespace swin_trt
{
namespace plugin
{

constexpr char const* kWindowAttentionName = "SwinWindowAttention";

class SwinWindowAttentionPlugin final : public SwinPluginBase
{
public:
    //! `headScale`: empty for V1 attention; cosine mode (Swin V2) otherwise, one scale per head.
    SwinWindowAttentionPlugin(int32_t numHeads, int32_t const* window, int32_t const* shift, int32_t height,
        int32_t width, float scale, std::vector<float> headScale);

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
    //! One source for the grid a shifted node needs: the attributes height/width (2 inputs: qkv, bias_table),
    //! or the feature map (3 inputs: a shifted node without height/width). An unshifted node needs no grid:
    //! 2 inputs, with or without the attributes. (enqueue is not told the input count: the fields fix it.)
    int32_t numInputs() const
    {
        return mHeight == 0 && shifted() ? 3 : 2;
    }

    //! "2 inputs (qkv, bias_table ...)", for messages.
    std::string describeInputs() const;

    //! Empty when the dims of qkv, bias_table and (when nbInputs == 3) the feature map fit this op, else the
    //! message. A dim of -1 is not known yet and passes.
    std::string checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const;

    //! The padded grid of the run: the attributes, the feature map's dims rounded up to the window, or (no
    //! shift, no size) a one-window grid: without a mask the window index is never used.
    AttentionGeometry geometry(nvinfer1::Dims const* dims, int32_t nbInputs) const;

    bool shifted() const
    {
        return mShift[0] != 0 || mShift[1] != 0;
    }

    int32_t mNumHeads;
    int32_t mWindow[2];
    int32_t mShift[2];
    int32_t mHeight; // the padded grid; 0: from the feature map, or not needed (no shift)
    int32_t mWidth;
    float mScale;
    int32_t mCosine;                // 1: scaled cosine attention (Swin V2)
    std::vector<float> mHeadScale;  // cosine mode: num_heads scales (never resized: a serialized field points here)
    AttentionGeometry mGeometry; // with size attributes: checked by the creator (every count fits in int32)
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
