// Shared pieces of the swin_trt TensorRT plugins (IPluginV3): logging through the ILoggerFinder handed to
// setLoggerFinder(), attribute (PluginField) parsing with clear errors, and a base class with the parts of
// IPluginV3 / IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime that the three ops share.
//
// Header-only use of TensorRT: compiles against the TensorRT 10.3 (JetPack 6) and 11.x headers, and the
// library does not link libnvinfer.
#ifndef SWIN_TRT_PLUGIN_COMMON_H
#define SWIN_TRT_PLUGIN_COMMON_H

#include "NvInferRuntime.h"

#include "swin_kernels.h"

#include <stdint.h>

#include <exception>
#include <string>
#include <vector>

#if !defined(NV_TENSORRT_MAJOR) || NV_TENSORRT_MAJOR < 10
#error "swin_trt plugins need TensorRT >= 10 (IPluginV3); JetPack 6 ships TensorRT 10.3"
#endif

namespace swin_trt
{
namespace plugin
{

constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "swin_trt";

//! Logs through the logger TensorRT handed to setLoggerFinder(); stderr when there is none.
void log(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept;

inline void logError(std::string const& message) noexcept
{
    log(nvinfer1::ILogger::Severity::kERROR, message);
}

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! "[a, b]"
std::string formatPair(int32_t const* v);

//! Reads the attributes of one node (or of a deserialized engine) and reports every problem by name.
class FieldReader
{
public:
    //! `context`: e.g. "SwinWindowPartition (swin_trt, version 1) 'node_name'", prefixed to every message.
    FieldReader(nvinfer1::PluginFieldCollection const* fc, std::string context);

    //! Exactly `count` integers. Logs and returns false when missing or of a wrong type/length.
    bool ints(char const* name, int32_t* out, int32_t count);
    bool int1(char const* name, int32_t& out);
    bool float1(char const* name, float& out);

    //! An optional INT: `absent` when the node does not carry it, else as int1().
    bool optionalInt1(char const* name, int32_t& out, int32_t absent);

    //! FLOATS of any length >= 1 (kFLOAT32 or kFLOAT64 fields). Logs and returns false when missing or mistyped.
    bool floats(char const* name, std::vector<float>& out);

    //! Whether the node carries the attribute at all.
    bool has(char const* name) const;

    //! How many values the attribute has (0 when absent).
    int32_t length(char const* name) const;

    //! Logs "<context>: <message>" as an error and returns false.
    bool error(std::string const& message) const;

private:
    nvinfer1::PluginField const* find(char const* name) const;

    nvinfer1::PluginFieldCollection const* mFC;
    std::string mContext;
};

//! window_size / shift_size of the three ops: 2 ints (H, W) or 3 (T, H, W: Video Swin), kept as given so that
//! a node serializes exactly the fields it came with. The accessors give the (T, H, W) view the kernels take,
//! a 2D window being T = 1 (wt = 1, st = 0).
struct WindowFields
{
    int32_t rank{2};        // 2 or 3: the number of values of window_size and shift_size
    int32_t window[3]{};    // as given (rank values)
    int32_t shift[3]{};

    int32_t wt() const
    {
        return rank == 3 ? window[0] : 1;
    }
    int32_t wh() const
    {
        return window[rank - 2];
    }
    int32_t ww() const
    {
        return window[rank - 1];
    }
    int32_t st() const
    {
        return rank == 3 ? shift[0] : 0;
    }
    int32_t sh() const
    {
        return shift[rank - 2];
    }
    int32_t sw() const
    {
        return shift[rank - 1];
    }
    bool shifted() const
    {
        return st() != 0 || sh() != 0 || sw() != 0;
    }
    //! N, the product of the window (each side <= 2^24: int64).
    int64_t tokens() const
    {
        return static_cast<int64_t>(wt()) * wh() * ww();
    }
    //! "[a, b]" or "[a, b, c]"
    std::string format(int32_t const* v) const;
    //! "(B, H, W, C)" or "(B, T, H, W, C)": the map a node of this rank takes.
    char const* mapLayout() const
    {
        return rank == 3 ? "(B, T, H, W, C)" : "(B, H, W, C)";
    }
};

//! Window/shift attributes shared by the three ops (2 or 3 ints each, the same count), validated. Returns false
//! (logged) when out of range.
bool readWindowShift(FieldReader& reader, WindowFields& fields);

//! The optional `height`/`width` of reverse and attention: both absent (or 0: "from the feature-map input",
//! which is how they are serialized) or both >= 1. Returns false (logged) when only one is given or a value is
//! negative; the ranges of given values are the op's to check.
bool readOptionalSize(FieldReader& reader, int32_t& height, int32_t& width);

//! pad_first of partition and reverse: 0 or 1, and 1 for a 3D window (Video Swin pads, then shifts). False
//! (logged) otherwise.
bool checkPadFirst(FieldReader& reader, WindowFields const& fields, int32_t padFirst);

//! readOptionalSize with a 3D window's `frames` (T): frames, height and width all given (>= 1) or none; a 2D
//! node takes no `frames` (refused with a message) and gets frames = 1 when sized, else 0.
bool readOptionalSize3d(FieldReader& reader, WindowFields const& fields, int32_t& frames, int32_t& height,
    int32_t& width);

//! Logs "<what>: <method>: <message>" as an error; never throws (used from catch handlers).
void logCaught(char const* what, char const* method, char const* message) noexcept;

//! Code shared by the three plugins. Derived classes implement the op-specific methods.
//!
//! Every IPluginV3 method is noexcept, and building an error message allocates: method bodies that can
//! allocate run inside guarded(), which turns any exception (std::bad_alloc included) into a logged error
//! and the method's failure value, as NVIDIA's own plugins do.
class SwinPluginBase : public nvinfer1::IPluginV3,
                       public nvinfer1::IPluginV3OneCore,
                       public nvinfer1::IPluginV3OneBuild,
                       public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit SwinPluginBase(char const* name)
        : mName(name)
    {
    }

    // The serialized fields point into the object's members: copies would point into the original.
    SwinPluginBase(SwinPluginBase const&) = delete;
    SwinPluginBase& operator=(SwinPluginBase const&) = delete;

    ~SwinPluginBase() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override
    {
        return mName;
    }

    char const* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    char const* getPluginNamespace() const noexcept override
    {
        return kPluginNamespace;
    }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;

    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;

    //! The fields registered with serializeField() by the constructor: nothing is allocated here.
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept final
    {
        return &mSerialFC;
    }

protected:
    //! "<OpName> (swin_trt, version 1)"
    std::string describe() const;

    //! Returns -1 after logging "<describe()>: <message>". Build `message` only inside guarded().
    int32_t fail(std::string const& message) const noexcept;
    int32_t fail(char const* message) const noexcept;

    //! Registers one serialized field; `data` points to a member of the plugin (constructors only).
    void serializeField(char const* name, void const* data, nvinfer1::PluginFieldType type, int32_t length);

    //! Runs `body` (which returns the method's result); an exception becomes a logged error and `onError`.
    template <typename Result, typename Body>
    Result guarded(char const* method, Result onError, Body&& body) const noexcept
    {
        try
        {
            return body();
        }
        catch (std::exception const& e)
        {
            logCaught(mName, method, e.what());
        }
        catch (...)
        {
            logCaught(mName, method, "unknown exception");
        }
        return onError;
    }

private:
    char const* mName;
    std::vector<nvinfer1::PluginField> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialFC{};
};

//! Base of SwinWindowPartition and SwinWindowReverse: input 0 moved to the one output of the same type, the
//! codes unchanged (linear float32, float16 or int8); reverse may take a second input, the feature map whose
//! dims give its size (any of those types, never read).
//!
//! Moving int8 codes unchanged is only right when input and output share one quantization scale. Explicit
//! Q/DQ graphs (strongly typed builds) put one scale around the op (or none: -1); a weakly typed TensorRT 10
//! build with a calibrator (`trtexec --int8`) may give the two tensors different scales, after
//! supportsFormatCombination (which sees no scales) offered int8. That case is accepted and requantized
//! inside the gather, out = saturate(round_half_even(in * in_scale / out_scale)) (int8Ratio), so a build never
//! fails on it and never computes it wrongly.
//!
//! configurePlugin and enqueue are written here once; an op supplies numInputs, checkInputs (its shape rules)
//! and launch.
class SwinDataMovementPlugin : public SwinPluginBase
{
public:
    using SwinPluginBase::SwinPluginBase;

    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept final;

    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept final;

    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept final;

    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept final;

protected:
    //! How many inputs this node takes (fixed by its attributes).
    virtual int32_t numInputs() const
    {
        return 1;
    }

    //! The inputs this node takes, for messages, e.g. "1 input (x)".
    virtual std::string describeInputs() const = 0;

    //! Empty when the dims of the `nbInputs` (== numInputs()) inputs fit the op, else the message. A dim of -1 is
    //! not known yet and passes: configurePlugin calls this with the build-time dims, the profile's min and its
    //! max; enqueue with the run's dims.
    virtual std::string checkInputs(nvinfer1::Dims const* dims, int32_t nbInputs) const = 0;

    //! Enqueues the kernel for checked input dims, all known and in [0, INT32_MAX]. int8Ratio: the kernels'
    //! int8 requantization factor in_scale / out_scale (1: codes unchanged; always 1 for float types).
    virtual cudaError_t launch(nvinfer1::Dims const* dims, int32_t nbInputs, DType type, void const* input,
        void* output, cudaStream_t stream, float int8Ratio) const = 0;

public:
    //! in_scale / out_scale for int8 `in` -> `out`: 1 for float types, where a scale is unknown (<= 0 or not
    //! finite: explicit Q/DQ builds give -1) or the two are equal (relative 1e-6: the same codes); otherwise the
    //! ratio, kept in [1e-30, 1e30] (beyond, every code rounds to 0 or saturates alike).
    static float int8Ratio(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out);

private:
    //! Empty when `in` -> `out` is a move this op makes (same type); otherwise why not.
    static std::string checkTypes(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out);
};

//! Base of the three creators: version "1", namespace "swin_trt", field list.
class SwinPluginCreatorBase : public nvinfer1::IPluginCreatorV3One
{
public:
    SwinPluginCreatorBase(char const* name, std::vector<nvinfer1::PluginField> fields);

    char const* getPluginName() const noexcept override
    {
        return mName;
    }

    char const* getPluginVersion() const noexcept override
    {
        return kPluginVersion;
    }

    char const* getPluginNamespace() const noexcept override
    {
        return kPluginNamespace;
    }

    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mFC;
    }

protected:
    //! "<OpName> (swin_trt, version 1) '<node name>'"
    std::string context(char const* nodeName) const;

    //! createPlugin's body: an exception becomes a logged error and nullptr.
    template <typename Body>
    nvinfer1::IPluginV3* guardedCreate(Body&& body) const noexcept
    {
        try
        {
            return body();
        }
        catch (std::exception const& e)
        {
            logCaught(mName, "createPlugin", e.what());
        }
        catch (...)
        {
            logCaught(mName, "createPlugin", "unknown exception");
        }
        return nullptr;
    }

private:
    char const* mName;
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFC{};
};

//! Maps a TensorRT type to the kernels' DType; false for unsupported types.
bool toKernelType(nvinfer1::DataType type, DType& out);

//! Readable name of a TensorRT type (for messages).
char const* typeName(nvinfer1::DataType type);

//! True when every dimension of `dims` at index >= `first` is known (>= 0).
bool allKnown(nvinfer1::Dims const& dims, int32_t first);

//! Empty when a T x H x W map (T = 1 for 2D) with the node's window fits the int32 geometry (swin_index.h),
//! else "input '<input>' is [T x ]H x W with window_size [..]: <why>".
std::string checkMapSize(char const* input, int64_t T, int64_t H, int64_t W, WindowFields const& fields);

//! Whether a map input of the node's rank (4-D, 3D windows: 5-D) has all its spatial dims known.
bool spatialKnown(nvinfer1::Dims const& map);

//! The (T, H, W) of a map input of the node's rank, (B, H, W, C) -> T = 1, (B, T, H, W, C) -> its T.
void spatialDims(nvinfer1::Dims const& map, int64_t& T, int64_t& H, int64_t& W);

//! The feature-map input of reverse and attention, (B, H, W, C') or (3D windows) (B, T, H, W, C') of which only
//! the dims are read: empty when its rank fits the window and its sizes (where known) fit the geometry, else
//! the message.
std::string checkFeatureMap(nvinfer1::Dims const& map, WindowFields const& fields);

//! "float32, float16 or int8 in kLINEAR": the feature-map input of reverse and attention (dims only, never read).
bool isFeatureMapFormat(nvinfer1::PluginTensorDesc const& desc);

//! The text of a kernel launch status (the emulated build has no CUDA runtime to ask).
std::string cudaErrorText(cudaError_t status);

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_PLUGIN_COMMON_H
