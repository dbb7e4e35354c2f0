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
//
// getCreators is looked up through this library's own handle (findDependencyGetCreators: dladdr, dlopen
// RTLD_NOLOAD, dlsym), never as an undefined symbol: the dynamic linker binds those in the global scope first,
// where any other plugin library loaded RTLD_GLOBAL (or preloaded) before this one, all of which export a
// getCreators, would win. Linked --no-as-needed so that libswin_trt_plugins.so stays a NEEDED dependency.
#include "plugin_registrar.h"

#include "NvInferRuntime.h"

#include <stdio.h>

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
        swin_trt::plugin::GetCreatorsFunction const getCreators
            = swin_trt::plugin::findDependencyGetCreators(this, "libswin_trt_plugins.so", toStderr);
        if (getCreators == nullptr)
        {
            return; // reported
        }
        int32_t count = 0;
        nvinfer1::IPluginCreatorInterface* const* const creators = getCreators(count);
        swin_trt::plugin::registerCreators(*registry, creators, count, toStderr);
    }
};

RegisterAtLoad const gRegisterAtLoad;

} // namespace
