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

    //! Logs "<context>: <message>" as an error and returns false.
    bool error(std::string const& message) const;

private:
    nvinfer1::PluginField const* find(char const* name) const;

    nvinfer1::PluginFieldCollection const* mFC;
    std::string mContext;
};

//! Window/shift attributes shared by the three ops, validated. Returns false (logged) when out of range.
bool readWindowShift(FieldReader& reader, int32_t* window, int32_t* shift);

//! Code shared by the three plugins. Derived classes implement the op-specific methods.
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

protected:
    //! "<OpName> (swin_trt, version 1)"
    std::string describe() const;

    //! Returns -1 after logging "<describe()>: <message>".
    int32_t fail(std::string const& message) const noexcept;

    //! Fields returned by getFieldsToSerialize(); the data pointers point into the plugin's members.
    std::vector<nvinfer1::PluginField> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialFC{};

    nvinfer1::PluginFieldCollection const* exposeFields() noexcept;

private:
    char const* mName;
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

private:
    char const* mName;
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFC{};
};

//! Maps a TensorRT type to the kernels' DType; false for unsupported types.
bool toKernelType(nvinfer1::DataType type, DType& out);

//! Readable name of a TensorRT type (for messages).
char const* typeName(nvinfer1::DataType type);

//! supportsFormatCombination of a one-in, one-out data-movement op (partition, reverse): linear format,
//! float32, float16 or int8 in, the same type out.
bool supportsDataMovementFormat(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept;

//! True when every dimension of `dims` at index >= `first` is known (>= 0).
bool allKnown(nvinfer1::Dims const& dims, int32_t first);

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_PLUGIN_COMMON_H
