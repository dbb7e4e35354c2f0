#include "plugin_registrar.h"

#include <stdio.h>
#include <string.h>

namespace swin_trt
{
namespace plugin
{
namespace
{

char const* const kCreatorV3OneKind = "PLUGIN CREATOR_V3ONE";

//! "<what> (swin_trt, version 1): <why>" into a fixed buffer: no allocation (this runs while a library loads).
void say(RegistrarReport report, char const* what, char const* version, char const* nameSpace, char const* why)
{
    char line[512];
    snprintf(line, sizeof(line), "%s (%s, version %s): %s", what, nameSpace, version, why);
    report(line);
}

} // namespace

int32_t registerCreators(nvinfer1::IPluginRegistry& registry, nvinfer1::IPluginCreatorInterface* const* creators,
    int32_t count, RegistrarReport report) noexcept
{
    if (count > 0 && creators == nullptr)
    {
        report("no plugin creators to register (getCreators returned none)");
        return -1;
    }
    int32_t registered = 0;
    for (int32_t i = 0; i < count; ++i)
    {
        nvinfer1::IPluginCreatorInterface* const creator = creators[i];
        if (creator == nullptr || strcmp(creator->getInterfaceInfo().kind, kCreatorV3OneKind) != 0)
        {
            report("skipped a creator that is not an IPluginCreatorV3One");
            continue;
        }
        auto* const v3 = static_cast<nvinfer1::IPluginCreatorV3One*>(creator);
        char const* const name = v3->getPluginName();
        char const* const version = v3->getPluginVersion();
        char const* const nameSpace = v3->getPluginNamespace();
        nvinfer1::IPluginCreatorInterface* const known = registry.getCreator(name, version, nameSpace);
        if (known == creator)
        {
            continue; // registered already (TensorRT's loadLibrary, or this library loaded before)
        }
        if (known != nullptr)
        {
            say(report, name, version, nameSpace,
                "another library registered a creator of this name, version and namespace; it stays in use "
                "(load one copy of the swin_trt plugins per process)");
            continue;
        }
        if (!registry.registerCreator(*creator, nameSpace))
        {
            say(report, name, version, nameSpace, "the plugin registry refused to register the creator");
            continue;
        }
        ++registered;
    }
    return registered;
}

} // namespace plugin
} // namespace swin_trt
