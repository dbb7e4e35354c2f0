// Entry points of libswin_trt_plugins.so, as TensorRT expects from a plugin library loaded with
// IPluginRegistry::loadLibrary (Python: trt.get_plugin_registry().load_library(path)) or
// `trtexec --dynamicPlugins=path`: getCreators() lists the IPluginCreatorV3One creators, setLoggerFinder()
// hands over the logger. Nothing else is exported.
#include "../SwinFusedWindowAttention/SwinFusedWindowAttentionPlugin.h"
#include "../SwinWindowAttention/SwinWindowAttentionPlugin.h"
#include "../SwinWindowPartition/SwinWindowPartitionPlugin.h"
#include "../SwinWindowReverse/SwinWindowReversePlugin.h"
#include "plugin_common.h"

#if defined(_WIN32)
#define SWIN_PLUGIN_EXPORT __declspec(dllexport)
#else
#define SWIN_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

extern "C" SWIN_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static swin_trt::plugin::SwinWindowPartitionCreator sPartition;
    static swin_trt::plugin::SwinWindowReverseCreator sReverse;
    static swin_trt::plugin::SwinWindowAttentionCreator sAttention;
    static swin_trt::plugin::SwinFusedWindowAttentionCreator sFusedAttention;
    static nvinfer1::IPluginCreatorInterface* const sCreators[] = {&sPartition, &sReverse, &sAttention, &sFusedAttention};
    nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}

extern "C" SWIN_PLUGIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    swin_trt::plugin::setLoggerFinder(finder);
}
