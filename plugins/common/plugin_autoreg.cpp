// libswin_trt_plugins_autoreg.so: registers the swin_trt plugin creators with TensorRT's plugin registry
// when the library is loaded, for hosts that load a plugin library with a plain dlopen and never call its
// getCreators(): Triton's TensorRT backend (--backend-config=tensorrt,plugins=..., dlopen RTLD_LOCAL) and
// DeepStream's nvinfer (custom-lib-path). plugins/README.md, "Hosts that only dlopen", says why this is a
// separate library.
//
// It holds no plugin code: the creators are libswin_trt_plugins.so's (a NEEDED dependency, found beside
// this file through RUNPATH $ORIGIN), and the registry is libnvinfer's getPluginRegistry() (linked: under
// RTLD_LOCAL only the library's own dependencies resolve its symbols). Linked with -z nodelete, so a dlclose
// never unloads creators the registry still points to.
#include "plugin_registrar.h"

#include "NvInferRuntime.h"

#include <stdio.h>

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators); // libswin_trt_plugins.so

namespace
{

void toStderr(char const* message)
{
    // No logger: TensorRT hands one only to loadLibrary'ed libraries (setLoggerFinder). The plugins then log to
    // stderr as well.
    fprintf(stderr, "[swin_trt plugins] libswin_trt_plugins_autoreg: %s\n", message);
}

struct RegisterAtLoad
{
    RegisterAtLoad()
    {
        nvinfer1::IPluginRegistry* const registry = getPluginRegistry();
        if (registry == nullptr)
        {
            toStderr("TensorRT's getPluginRegistry() returned no registry: the swin_trt plugins are not registered");
            return;
        }
        int32_t count = 0;
        nvinfer1::IPluginCreatorInterface* const* const creators = getCreators(count);
        swin_trt::plugin::registerCreators(*registry, creators, count, toStderr);
    }
};

RegisterAtLoad const gRegisterAtLoad;

} // namespace
