// libswin_trt_decoy_creators.so (test only): exports getCreators() like every TensorRT plugin library does,
// with none of swin_trt's creators. swin_trt_plugin_host_test preloads it in a child run (LD_PRELOAD: first in
// the global lookup scope after the executable) and checks that the registering library still registers the
// creators of its own dependency, libswin_trt_plugins.so, which a global symbol lookup would miss.
#include "NvInferRuntime.h"

#include <stdint.h>

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
    static nvinfer1::IPluginCreatorInterface* const sNone[1] = {nullptr};
    nbCreators = 0;
    return sNone;
}
