// Registration of the swin_trt creators with a TensorRT plugin registry, for hosts that only dlopen a plugin
// library (Triton's TensorRT backend, DeepStream's nvinfer): libswin_trt_plugins_autoreg.so calls it when it
// is loaded (plugin_autoreg.cpp). TensorRT's own IPluginRegistry::loadLibrary does not need it: it calls
// getCreators() of libswin_trt_plugins.so and registers what that returns.
#ifndef SWIN_TRT_PLUGIN_REGISTRAR_H
#define SWIN_TRT_PLUGIN_REGISTRAR_H

#include "NvInferRuntime.h"

#include <stdint.h>

namespace swin_trt
{
namespace plugin
{

//! Receives one line per creator that was not registered, and why (never null when called).
using RegistrarReport = void (*)(char const* message);

//! Registers every IPluginCreatorV3One of `creators` with `registry` under its own namespace ("swin_trt"),
//! once: a creator whose name, version and namespace the registry already knows is left alone (the very same
//! creator, registered earlier by loadLibrary or an earlier load; or another copy of the library's, which
//! is reported). TensorRT refuses a duplicate registration, and a loadLibrary of a library whose creators are
//! already registered fails, so registering twice is never right.
//! Returns how many creators it registered now, or -1 when `creators` is null with `count` > 0.
int32_t registerCreators(nvinfer1::IPluginRegistry& registry, nvinfer1::IPluginCreatorInterface* const* creators,
    int32_t count, RegistrarReport report) noexcept;

//! getCreators() as TensorRT's loadLibrary protocol defines it.
using GetCreatorsFunction = nvinfer1::IPluginCreatorInterface* const* (*) (int32_t& nbCreators);

//! The getCreators() of the registering library's own dependency `dependency` (a file name:
//! "libswin_trt_plugins.so"), never the one a global symbol lookup would find (every TensorRT plugin library
//! exports a getCreators; one loaded RTLD_GLOBAL or preloaded before this library would win a global lookup).
//! `self` is any address inside the registering library: dladdr gives its path, dlopen(path, RTLD_NOLOAD |
//! RTLD_LAZY) its handle, and dlsym on that handle searches the library and its dependencies only, in load
//! order. The definition found must sit in a library named `dependency` (dladdr), and be that library's own
//! (dlsym on its handle, dlopen(RTLD_NOLOAD | RTLD_LAZY) of its path). Returns nullptr after a report when not.
GetCreatorsFunction findDependencyGetCreators(void const* self, char const* dependency, RegistrarReport report) noexcept;

} // namespace plugin
} // namespace swin_trt

#endif // SWIN_TRT_PLUGIN_REGISTRAR_H
