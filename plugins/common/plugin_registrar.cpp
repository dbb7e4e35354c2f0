#include "plugin_registrar.h"

#include <dlfcn.h>
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

GetCreatorsFunction findDependencyGetCreators(void const* self, char const* dependency, RegistrarReport report) noexcept
{
    char line[1024];
    Dl_info own{};
    if (self == nullptr || dependency == nullptr || dladdr(self, &own) == 0 || own.dli_fname == nullptr)
    {
        report("cannot tell which library registers (dladdr failed): the swin_trt plugins are not registered");
        return nullptr;
    }
    void* const ownHandle = dlopen(own.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (ownHandle == nullptr)
    {
        snprintf(line, sizeof(line), "dlopen(%s, RTLD_NOLOAD) found no handle: the swin_trt plugins are not registered",
            own.dli_fname);
        report(line);
        return nullptr;
    }
    // A handle's lookup scope is the library and its dependencies (breadth first), not the process's global one.
    void* const found = dlsym(ownHandle, "getCreators");
    dlclose(ownHandle);
    Dl_info where{};
    if (found == nullptr || dladdr(found, &where) == 0 || where.dli_fname == nullptr)
    {
        snprintf(line, sizeof(line), "no getCreators among the dependencies of %s (is %s beside it?): the swin_trt "
            "plugins are not registered", own.dli_fname, dependency);
        report(line);
        return nullptr;
    }
    char const* const slash = strrchr(where.dli_fname, '/');
    char const* const fileName = slash != nullptr ? slash + 1 : where.dli_fname;
    if (where.dli_fbase == own.dli_fbase || strcmp(fileName, dependency) != 0)
    {
        snprintf(line, sizeof(line), "the getCreators %s depends on first is in %s, not in %s: the swin_trt "
            "plugins are not registered", own.dli_fname, where.dli_fname, dependency);
        report(line);
        return nullptr;
    }
    void* const depHandle = dlopen(where.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    void* const ownDefinition = depHandle != nullptr ? dlsym(depHandle, "getCreators") : nullptr;
    if (depHandle != nullptr)
    {
        dlclose(depHandle);
    }
    if (ownDefinition != found)
    {
        snprintf(line, sizeof(line), "%s does not define the getCreators found through it: the swin_trt plugins are "
            "not registered", where.dli_fname);
        report(line);
        return nullptr;
    }
    GetCreatorsFunction function = nullptr;
    static_assert(sizeof(function) == sizeof(found), "function and object pointers differ in size");
    memcpy(&function, &found, sizeof(function)); // dlsym's object pointer to a function pointer (POSIX)
    return function;
}

} // namespace plugin
} // namespace swin_trt
