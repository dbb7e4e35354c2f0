#include "plugin_common.h"

#include "swin_index.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mutex>

namespace swin_trt
{
namespace plugin
{
namespace
{

std::mutex gLoggerMutex;
nvinfer1::ILoggerFinder* gLoggerFinder{nullptr};

} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    if (gLoggerFinder == nullptr && finder != nullptr)
    {
        gLoggerFinder = finder;
    }
}

void log(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept
{
    try
    {
        nvinfer1::ILogger* logger = nullptr;
        {
            std::lock_guard<std::mutex> lock(gLoggerMutex);
            if (gLoggerFinder != nullptr)
            {
                logger = gLoggerFinder->findLogger();
            }
        }
        std::string const text = "[swin_trt plugins] " + message;
        if (logger != nullptr)
        {
            logger->log(severity, text.c_str());
        }
        else if (severity <= nvinfer1::ILogger::Severity::kWARNING)
        {
            fprintf(stderr, "%s\n", text.c_str());
        }
    }
    catch (...)
    {
    }
}

void logCaught(char const* what, char const* method, char const* message) noexcept
{
    try
    {
        logError(std::string(what) + " (" + kPluginNamespace + ", version " + kPluginVersion + "): "
            + (*method != '\0' ? std::string(method) + ": " : std::string()) + message);
    }
    catch (...)
    {
        // No memory left for a string: straight to stderr.
        fprintf(stderr, "[swin_trt plugins] %s: %s%s%s\n", what, method, *method != '\0' ? ": " : "", message);
    }
}

std::string formatPair(int32_t const* v)
{
    return "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]";
}

FieldReader::FieldReader(nvinfer1::PluginFieldCollection const* fc, std::string context)
    : mFC(fc)
    , mContext(std::move(context))
{
}

bool FieldReader::error(std::string const& message) const
{
    logError(mContext + ": " + message);
    return false;
}

nvinfer1::PluginField const* FieldReader::find(char const* name) const
{
    if (mFC == nullptr || mFC->fields == nullptr)
    {
        return nullptr;
    }
    for (int32_t i = 0; i < mFC->nbFields; ++i)
    {
        nvinfer1::PluginField const& f = mFC->fields[i];
        if (f.name != nullptr && strcmp(f.name, name) == 0)
        {
            return &f;
        }
    }
    return nullptr;
}

bool FieldReader::ints(char const* name, int32_t* out, int32_t count)
{
    nvinfer1::PluginField const* f = find(name);
    if (f == nullptr || f->data == nullptr)
    {
        return error(std::string("required attribute '") + name + "' is missing (expected "
            + (count == 1 ? std::string("an INT") : "INTS of length " + std::to_string(count)) + ")");
    }
    if (f->length != count)
    {
        return error(std::string("attribute '") + name + "' has " + std::to_string(f->length)
            + " values, expected " + std::to_string(count));
    }
    for (int32_t i = 0; i < count; ++i)
    {
        int64_t v = 0;
        switch (f->type)
        {
        case nvinfer1::PluginFieldType::kINT32: v = static_cast<int32_t const*>(f->data)[i]; break;
        case nvinfer1::PluginFieldType::kINT64: v = static_cast<int64_t const*>(f->data)[i]; break;
        case nvinfer1::PluginFieldType::kINT16: v = static_cast<int16_t const*>(f->data)[i]; break;
        case nvinfer1::PluginFieldType::kINT8: v = static_cast<int8_t const*>(f->data)[i]; break;
        default:
            return error(std::string("attribute '") + name + "' must be integer (PluginFieldType kINT32), got type "
                + std::to_string(static_cast<int32_t>(f->type)));
        }
        if (v < INT32_MIN || v > INT32_MAX)
        {
            return error(std::string("attribute '") + name + "' value " + std::to_string(v) + " overflows int32");
        }
        out[i] = static_cast<int32_t>(v);
    }
    return true;
}

bool FieldReader::int1(char const* name, int32_t& out)
{
    return ints(name, &out, 1);
}

bool FieldReader::float1(char const* name, float& out)
{
    nvinfer1::PluginField const* f = find(name);
    if (f == nullptr || f->data == nullptr)
    {
        return error(std::string("required attribute '") + name + "' is missing (expected a FLOAT)");
    }
    if (f->length != 1)
    {
        return error(std::string("attribute '") + name + "' has " + std::to_string(f->length) + " values, expected 1");
    }
    if (f->type == nvinfer1::PluginFieldType::kFLOAT32)
    {
        out = *static_cast<float const*>(f->data);
    }
    else if (f->type == nvinfer1::PluginFieldType::kFLOAT64)
    {
        out = static_cast<float>(*static_cast<double const*>(f->data));
    }
    else
    {
        return error(std::string("attribute '") + name + "' must be a float (PluginFieldType kFLOAT32), got type "
            + std::to_string(static_cast<int32_t>(f->type)));
    }
    return true;
}

bool FieldReader::optionalInt1(char const* name, int32_t& out, int32_t absent)
{
    if (!has(name))
    {
        out = absent;
        return true;
    }
    return int1(name, out);
}

bool FieldReader::floats(char const* name, std::vector<float>& out)
{
    nvinfer1::PluginField const* f = find(name);
    if (f == nullptr || f->data == nullptr || f->length < 1)
    {
        return error(std::string("required attribute '") + name + "' is missing (expected FLOATS)");
    }
    out.resize(static_cast<size_t>(f->length));
    for (int32_t i = 0; i < f->length; ++i)
    {
        if (f->type == nvinfer1::PluginFieldType::kFLOAT32)
        {
            out[i] = static_cast<float const*>(f->data)[i];
        }
        else if (f->type == nvinfer1::PluginFieldType::kFLOAT64)
        {
            out[i] = static_cast<float>(static_cast<double const*>(f->data)[i]);
        }
        else
        {
            return error(std::string("attribute '") + name + "' must be floats (PluginFieldType kFLOAT32), got type "
                + std::to_string(static_cast<int32_t>(f->type)));
        }
    }
    return true;
}

bool FieldReader::has(char const* name) const
{
    nvinfer1::PluginField const* f = find(name);
    return f != nullptr && f->data != nullptr;
}

int32_t FieldReader::length(char const* name) const
{
    nvinfer1::PluginField const* f = find(name);
    return f != nullptr && f->data != nullptr ? f->length : 0;
}

std::string WindowFields::format(int32_t const* v) const
{
    return rank == 3 ? "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ", " + std::to_string(v[2]) + "]"
                     : formatPair(v);
}

bool readWindowShift(FieldReader& reader, WindowFields& fields)
{
    // A 2D node (2 ints) or a 3D one (3 ints, T first); a missing attribute is named by ints() below.
    int32_t const length = reader.length("window_size");
    if (reader.has("window_size") && length != 2 && length != 3)
    {
        return reader.error("attribute 'window_size' has " + std::to_string(length)
            + " values, expected 2 (H, W) or 3 (T, H, W: a 3D window)");
    }
    int32_t const rank = length == 3 ? 3 : 2;
    if (reader.has("shift_size") && reader.length("shift_size") != rank)
    {
        return reader.error("attribute 'shift_size' has " + std::to_string(reader.length("shift_size"))
            + " values, expected " + std::to_string(rank) + " (as many as window_size)");
    }
    fields.rank = rank;
    int32_t* const window = fields.window;
    int32_t* const shift = fields.shift;
    if (!reader.ints("window_size", window, rank) || !reader.ints("shift_size", shift, rank))
    {
        return false;
    }
    for (int32_t i = 0; i < rank; ++i)
    {
        if (window[i] < 1 || window[i] > kMaxSide)
        {
            return reader.error("attribute 'window_size' = " + fields.format(window)
                + " out of range: each must be in [1, 2^24]");
        }
    }
    for (int32_t i = 0; i < rank; ++i)
    {
        if (shift[i] < 0 || shift[i] >= window[i])
        {
            return reader.error("attribute 'shift_size' = " + fields.format(shift)
                + " out of range: need 0 <= shift < window (window_size = " + fields.format(window) + ")");
        }
    }
    return true;
}

bool readOptionalSize(FieldReader& reader, int32_t& height, int32_t& width)
{
    if (!reader.optionalInt1("height", height, 0) || !reader.optionalInt1("width", width, 0))
    {
        return false;
    }
    if (height < 0 || width < 0 || (height == 0) != (width == 0))
    {
        return reader.error("attributes 'height' = " + std::to_string(height) + ", 'width' = " + std::to_string(width)
            + ": give both (>= 1) for a graph of one size, or neither (0) when the size comes from the "
              "feature-map input");
    }
    return true;
}

bool checkPadFirst(FieldReader& reader, WindowFields const& fields, int32_t padFirst)
{
    if (padFirst != 0 && padFirst != 1)
    {
        return reader.error("attribute 'pad_first' = " + std::to_string(padFirst) + " out of range: must be 0 or 1");
    }
    if (fields.rank == 3 && padFirst != 1)
    {
        return reader.error("attribute 'pad_first' = 0 out of range: must be 1 for a 3D window (window_size "
            + fields.format(fields.window) + "): Video Swin pads, then shifts; shift-then-pad is 2D only");
    }
    return true;
}

bool readOptionalSize3d(FieldReader& reader, WindowFields const& fields, int32_t& frames, int32_t& height,
    int32_t& width)
{
    if (!readOptionalSize(reader, height, width))
    {
        return false;
    }
    if (fields.rank == 2)
    {
        frames = height > 0 ? 1 : 0;
        return !reader.has("frames")
            || reader.error("attribute 'frames' is only for a 3D window (window_size of 3 ints, T, H, W); this "
                            "node's window_size " + fields.format(fields.window) + " is 2D: drop frames");
    }
    if (!reader.optionalInt1("frames", frames, 0))
    {
        return false;
    }
    if (frames < 0 || (frames == 0) != (height == 0))
    {
        return reader.error("attributes 'frames' = " + std::to_string(frames) + ", 'height' = "
            + std::to_string(height) + ", 'width' = " + std::to_string(width) + ": give all three (>= 1) for a "
            + "graph of one size, or none (0) when the size comes from the feature-map input");
    }
    return true;
}

bool toKernelType(nvinfer1::DataType type, DType& out)
{
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT: out = DType::kFLOAT32; return true;
    case nvinfer1::DataType::kHALF: out = DType::kFLOAT16; return true;
    case nvinfer1::DataType::kINT8: out = DType::kINT8; return true;
    default: return false;
    }
}

char const* typeName(nvinfer1::DataType type)
{
    switch (type)
    {
    case nvinfer1::DataType::kFLOAT: return "float32";
    case nvinfer1::DataType::kHALF: return "float16";
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kBOOL: return "bool";
    default: return "another type";
    }
}

bool allKnown(nvinfer1::Dims const& dims, int32_t first)
{
    for (int32_t i = first; i < dims.nbDims; ++i)
    {
        if (dims.d[i] < 0)
        {
            return false;
        }
    }
    return true;
}

std::string checkMapSize(char const* input, int64_t T, int64_t H, int64_t W, WindowFields const& fields)
{
    char const* why = checkWindowGeometry3d(T, H, W, fields.wt(), fields.wh(), fields.ww());
    if (why == nullptr)
    {
        return {};
    }
    std::string const size = (fields.rank == 3 ? std::to_string(T) + " x " : std::string()) + std::to_string(H)
        + " x " + std::to_string(W);
    return std::string("input '") + input + "' is " + size + " with window_size " + fields.format(fields.window) + ": "
        + why;
}

bool spatialKnown(nvinfer1::Dims const& map)
{
    for (int32_t i = 1; i + 1 < map.nbDims; ++i)
    {
        if (map.d[i] < 0)
        {
            return false;
        }
    }
    return true;
}

void spatialDims(nvinfer1::Dims const& map, int64_t& T, int64_t& H, int64_t& W)
{
    T = map.nbDims == 5 ? map.d[1] : 1;
    H = map.d[map.nbDims - 3];
    W = map.d[map.nbDims - 2];
}

std::string checkFeatureMap(nvinfer1::Dims const& map, WindowFields const& fields)
{
    if (map.nbDims != fields.rank + 2)
    {
        return std::string("input 'feature_map' must be ") + std::to_string(fields.rank + 2) + "-D "
            + fields.mapLayout() + " for window_size " + fields.format(fields.window) + ", got "
            + std::to_string(map.nbDims) + "-D";
    }
    if (!spatialKnown(map))
    {
        return {};
    }
    int64_t T, H, W;
    spatialDims(map, T, H, W);
    return checkMapSize("feature_map", T, H, W, fields);
}

bool isFeatureMapFormat(nvinfer1::PluginTensorDesc const& desc)
{
    using nvinfer1::DataType;
    return desc.format == nvinfer1::TensorFormat::kLINEAR
        && (desc.type == DataType::kFLOAT || desc.type == DataType::kHALF || desc.type == DataType::kINT8);
}

std::string cudaErrorText(cudaError_t status)
{
#if defined(SWIN_TRT_EMULATION)
    return "cudaError " + std::to_string(static_cast<int32_t>(status));
#else
    return cudaGetErrorString(status);
#endif
}

// ---------------------------------------------------------------------------------------------------------

nvinfer1::IPluginCapability* SwinPluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

int32_t SwinPluginBase::getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
    nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || nbInputs < 1)
    {
        return fail("getOutputDataTypes: unexpected number of inputs/outputs");
    }
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t SwinPluginBase::onShapeChange(nvinfer1::PluginTensorDesc const* /*in*/, int32_t /*nbInputs*/,
    nvinfer1::PluginTensorDesc const* /*out*/, int32_t /*nbOutputs*/) noexcept
{
    return 0; // enqueue reads the shapes from its tensor descriptors: nothing to cache
}

nvinfer1::IPluginV3* SwinPluginBase::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

std::string SwinPluginBase::describe() const
{
    return std::string(mName) + " (" + kPluginNamespace + ", version " + kPluginVersion + ")";
}

int32_t SwinPluginBase::fail(std::string const& message) const noexcept
{
    return fail(message.c_str());
}

int32_t SwinPluginBase::fail(char const* message) const noexcept
{
    try
    {
        logError(describe() + ": " + message);
    }
    catch (...)
    {
        logCaught(mName, "", message);
    }
    return -1;
}

void SwinPluginBase::serializeField(
    char const* name, void const* data, nvinfer1::PluginFieldType type, int32_t length)
{
    mSerialFields.emplace_back(name, data, type, length);
    mSerialFC.nbFields = static_cast<int32_t>(mSerialFields.size());
    mSerialFC.fields = mSerialFields.data();
}

bool SwinDataMovementPlugin::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != numInputs() || nbOutputs != 1 || pos < 0 || pos > nbInputs)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& desc = inOut[pos].desc;
    if (pos == nbInputs) // the output moves input 0's codes
    {
        return desc.format == nvinfer1::TensorFormat::kLINEAR && desc.type == inOut[0].desc.type;
    }
    return isFeatureMapFormat(desc); // input 0, or the feature map (any of these types, whatever input 0's)
}

int32_t SwinDataMovementPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", -1, [&]() -> int32_t {
        if (in == nullptr || out == nullptr || nbInputs != numInputs() || nbOutputs != 1)
        {
            return fail("expects " + describeInputs() + " and 1 output, got " + std::to_string(nbInputs)
                + " input(s)");
        }
        // The build-time dims (-1 where dynamic), then both ends of the optimization profile. The ends bound each
        // dim on its own, so whether dim 0 holds whole images is left to the run (-1 there).
        nvinfer1::Dims dims[2][3];
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            dims[i][0] = in[i].desc.dims;
            dims[i][1] = in[i].min;
            dims[i][2] = in[i].max;
            dims[i][1].d[0] = -1;
            dims[i][2].d[0] = -1;
        }
        char const* const which[] = {"", "the profile's minimum: ", "the profile's maximum: "};
        for (int32_t k = 0; k < 3; ++k)
        {
            nvinfer1::Dims const set[2] = {dims[0][k], dims[nbInputs - 1][k]};
            std::string const why = checkInputs(set, nbInputs);
            if (!why.empty())
            {
                return fail(which[k] + why);
            }
        }
        std::string const why = checkTypes(in[0].desc, out[0].desc);
        return why.empty() ? 0 : fail(why);
    });
}

int32_t SwinDataMovementPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("onShapeChange", -1, [&]() -> int32_t {
        if (in == nullptr || out == nullptr || nbInputs != numInputs() || nbOutputs != 1)
        {
            return fail("onShapeChange: expects " + describeInputs() + " and 1 output");
        }
        std::string const why = checkTypes(in[0], out[0]);
        return why.empty() ? 0 : fail("onShapeChange: " + why);
    });
}

int32_t SwinDataMovementPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs, void* const* outputs,
    void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", -1, [&]() -> int32_t {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            return fail("enqueue: null descriptors or buffers");
        }
        int32_t const nbInputs = numInputs(); // TensorRT runs the node it configured
        DType type;
        if (!toKernelType(inputDesc[0].type, type))
        {
            return fail(std::string("enqueue: unsupported input type ") + typeName(inputDesc[0].type)
                + " (need float32, float16 or int8)");
        }
        nvinfer1::Dims const dims[2] = {inputDesc[0].dims, inputDesc[nbInputs - 1].dims};
        std::string why;
        for (int32_t input = 0; why.empty() && input < nbInputs; ++input)
        {
            for (int32_t i = 0; why.empty() && i < dims[input].nbDims; ++i)
            {
                if (dims[input].d[i] < 0 || dims[input].d[i] > INT32_MAX)
                {
                    why = "dimension " + std::to_string(i) + " of input " + std::to_string(input) + " ("
                        + std::to_string(dims[input].d[i]) + ") out of range";
                }
            }
        }
        if (why.empty())
        {
            why = checkInputs(dims, nbInputs);
        }
        if (why.empty())
        {
            why = checkTypes(inputDesc[0], outputDesc[0]);
        }
        if (!why.empty())
        {
            return fail("enqueue: " + why);
        }
        cudaError_t const status
            = launch(dims, nbInputs, type, inputs[0], outputs[0], stream, int8Ratio(inputDesc[0], outputDesc[0]));
        if (status != cudaSuccess)
        {
            return fail("kernel launch failed: " + cudaErrorText(status));
        }
        return 0;
    });
}

std::string SwinDataMovementPlugin::checkTypes(
    nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out)
{
    if (in.type != out.type)
    {
        return "output type must equal the input type";
    }
    return {}; // int8 with two different scales is requantized (int8Ratio), never refused
}

float SwinDataMovementPlugin::int8Ratio(nvinfer1::PluginTensorDesc const& in, nvinfer1::PluginTensorDesc const& out)
{
    if (in.type != nvinfer1::DataType::kINT8 || out.type != nvinfer1::DataType::kINT8)
    {
        return 1.0F;
    }
    // TensorRT sets a scale to -1 where it has none (explicit Q/DQ): only two known scales can disagree.
    float const a = in.scale;
    float const b = out.scale;
    if (!(a > 0.0F) || !(b > 0.0F) || !isfinite(a) || !isfinite(b) || fabsf(a - b) <= 1e-6F * fmaxf(a, b))
    {
        return 1.0F; // |code| <= 128: a ratio within 1e-6 of 1 rounds every code to itself
    }
    float const ratio = a / b;
    return ratio < 1e-30F ? 1e-30F : (ratio > 1e30F ? 1e30F : ratio);
}

SwinPluginCreatorBase::SwinPluginCreatorBase(char const* name, std::vector<nvinfer1::PluginField> fields)
    : mName(name)
    , mFields(std::move(fields))
{
    mFC.nbFields = static_cast<int32_t>(mFields.size());
    mFC.fields = mFields.data();
}

std::string SwinPluginCreatorBase::context(char const* nodeName) const
{
    return std::string(mName) + " (" + kPluginNamespace + ", version " + kPluginVersion + ") '"
        + (nodeName != nullptr ? nodeName : "") + "'";
}

} // namespace plugin
} // namespace swin_trt
