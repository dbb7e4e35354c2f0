// TensorRT IPluginV3 plugin SwinWindowAttention (namespace "swin_trt", version "1").
// Contract: plugins/SwinWindowAttention/README.md.
#ifndef SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H
#define SWIN_TRT_SWIN_WINDOW_ATTENTION_PLUGIN_H

#include "plugin_common.h"
#include "swin_index.h"

#include <string>
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
    //! frames/height/width: the padded grid (0: from the feature map or not needed); a 2D node's frames is 1 when
    //! sized and is not serialized.
    SwinWindowAttentionPlugin(int32_t numHeads, WindowFields const& fields, int32_t frames, int32_t height,
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
    //! One source for the grid a shifted node needs: the attributes (frames/)height/width (2 inputs: qkv, bias),
    //! or the feature map (3 inputs: a shifted node without height/width). An unshifted node needs no grid:
    //! 2 inputs, with or without the attributes. (enqueue is not told the input count: the fields fix it.)
    int32_t numInputs() const
    {
        return mHeight == 0 && shifted() ? 3 : 2;
    }

    //! "2 inputs (qkv, bias_table ...)", for messages.
    std::string describeInputs() const;

    //! Empty when the dims of qkv, the bias (table or dense) and (when nbInputs == 3) the feature map fit this op,
    //! else the message. A dim of -1 is not known yet and passes.
    std::string checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const;

    //! Empty when input 1 is the table ((2wt-1)(2wh-1)(2ww-1), num_heads) or a dense bias (num_heads, N, N).
    std::string checkBias(nvinfer1::Dims const& bias) const;

    //! The padded grid of the run: the attributes, the feature map's dims rounded up to the window, or (no
    //! shift, no size) a one-window grid: without a mask the window index is never used.
    AttentionGeometry geometry(nvinfer1::Dims const* dims, int32_t nbInputs) const;

    bool shifted() const
    {
        return mFields.shifted();
    }

    int32_t mNumHeads;
    WindowFields mFields; // window_size / shift_size, serialized as given (2 or 3 ints)
    int32_t mFrames; // the padded grid's T (3D only: a 2D node's is 1 when sized, and not serialized)
    int32_t mHeight; // the padded grid; 0: from the feature map, or not needed (no shift)
    int32_t mWidth;
    float mScale;
    int32_t mCosine;                // 1: scaled cosine attention (Swin V2)
    std::vector<float> mHeadScale;  // cosine mode: num_heads scales (never resized: a serialized field points here)
    AttentionGeometry mGeometry; // with size attributes: checked by the creator (every count fits in int32)
};

//! Empty when `bias` (input 1 of the attention ops) is the table ((2wt-1)(2wh-1)(2ww-1), numHeads) or a dense
//! bias (numHeads, N, N), else the message. A dim of -1 is not known yet and passes.
std::string checkAttentionBias(nvinfer1::Dims const& bias, WindowFields const& fields, int32_t numHeads);

//! Cosine mode's fields of the attention ops: `cosine` (0 or 1, default 0) and, iff it is 1, `head_scale`
//! (numHeads values in (0, 100]) with `scale` = 1. Fills `headScale` (empty for V1); false (logged) when a rule
//! is broken.
bool readCosineFields(FieldReader& reader, int32_t numHeads, float scale, std::vector<float>& headScale);

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
