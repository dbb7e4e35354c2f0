// Shared by the plugin host tests (swin_trt_plugin_host_test, swin_trt_plugin_emulated_test): checks with a
// count, a logger that keeps the plugins' messages, a mock IExprBuilder whose expressions carry their value
// (and whether it is a build-time constant), attribute collections, tensor descriptors, and the capability
// casts of IPluginV3. Everything is `inline` in namespace swin_test.
#ifndef SWIN_TRT_TESTS_PLUGIN_TEST_SUPPORT_H
#define SWIN_TRT_TESTS_PLUGIN_TEST_SUPPORT_H

#include "NvInferRuntime.h"

#include <stdio.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);

namespace swin_test
{

using namespace nvinfer1;

inline int gFailures = 0;
inline int gChecks = 0;
//! Set by a test that makes allocations fail: the logger then drops messages (it cannot store them).
inline bool gFailAllocations = false;

inline void check(bool ok, std::string const& what)
{
    ++gChecks;
    if (!ok && ++gFailures <= 30)
    {
        fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

// ---- logger ------------------------------------------------------------------------------------------------
class CaptureLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING && !gFailAllocations) // (no memory: the message is dropped)
        {
            messages.emplace_back(msg);
        }
    }

    bool saw(char const* needle) const
    {
        for (auto const& m : messages)
        {
            if (m.find(needle) != std::string::npos)
            {
                return true;
            }
        }
        return false;
    }

    std::vector<std::string> messages;
};

inline CaptureLogger gLogger;

class Finder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &gLogger;
    }
};

inline Finder gFinder;

// ---- mock IExprBuilder: every expression carries its value for a concrete batch, and whether it is constant --
class ExprImpl : public apiv::VDimensionExpr
{
public:
    ExprImpl(bool constant, int64_t value)
        : mConstant(constant)
        , mValue(value)
    {
    }

    bool isConstant() const override
    {
        return mConstant;
    }

    int64_t getConstantValue() const override
    {
        return mConstant ? mValue : -1;
    }

    bool isSizeTensor() const override
    {
        return false;
    }

    bool mConstant;
    int64_t mValue;
};

class MockExpr : public IDimensionExpr
{
public:
    MockExpr(bool constant, int64_t value)
        : mImplObject(constant, value)
    {
        mImpl = &mImplObject;
    }

    ExprImpl mImplObject;
};

inline int64_t valueOf(IDimensionExpr const* e)
{
    return static_cast<MockExpr const*>(e)->mImplObject.mValue;
}

class BuilderImpl : public apiv::VExprBuilder
{
public:
    IDimensionExpr const* make(bool constant, int64_t v)
    {
        pool.emplace_back(new MockExpr(constant, v));
        return pool.back().get();
    }

    IDimensionExpr const* constant(int64_t value) override
    {
        return make(true, value);
    }

    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override
    {
        int64_t const x = valueOf(&a);
        int64_t const y = valueOf(&b);
        int64_t v = 0;
        switch (op)
        {
        case DimensionOperation::kSUM: v = x + y; break;
        case DimensionOperation::kPROD: v = x * y; break;
        case DimensionOperation::kMAX: v = x > y ? x : y; break;
        case DimensionOperation::kMIN: v = x < y ? x : y; break;
        case DimensionOperation::kSUB: v = x - y; break;
        case DimensionOperation::kEQUAL: v = x == y; break;
        case DimensionOperation::kLESS: v = x < y; break;
        case DimensionOperation::kFLOOR_DIV: v = x / y; break;
        case DimensionOperation::kCEIL_DIV: v = (x + y - 1) / y; break;
        }
        return make(a.isConstant() && b.isConstant(), v);
    }

    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }

    std::vector<std::unique_ptr<MockExpr>> pool;
};

class MockBuilder : public IExprBuilder
{
public:
    MockBuilder()
    {
        mImpl = &mImplObject;
    }

    BuilderImpl mImplObject;
};

// ---- helpers -----------------------------------------------------------------------------------------------
inline IPluginCreatorV3One* creator(char const* name)
{
    int32_t n = 0;
    IPluginCreatorInterface* const* list = getCreators(n);
    for (int32_t i = 0; i < n; ++i)
    {
        auto* c = static_cast<IPluginCreatorV3One*>(list[i]);
        if (strcmp(c->getPluginName(), name) == 0)
        {
            return c;
        }
    }
    return nullptr;
}

struct Fields
{
    std::vector<std::vector<int32_t>> ints;
    std::vector<float> floats;
    std::vector<std::vector<float>> floatLists;
    std::vector<PluginField> fields;
    PluginFieldCollection fc{};

    Fields()
    {
        ints.reserve(16);
        floats.reserve(16);
        floatLists.reserve(16);
    }

    Fields& i(char const* name, std::vector<int32_t> v)
    {
        ints.push_back(std::move(v));
        fields.emplace_back(name, ints.back().data(), PluginFieldType::kINT32, static_cast<int32_t>(ints.back().size()));
        return *this;
    }

    Fields& f(char const* name, float v)
    {
        floats.push_back(v);
        fields.emplace_back(name, &floats.back(), PluginFieldType::kFLOAT32, 1);
        return *this;
    }

    Fields& fs(char const* name, std::vector<float> v)
    {
        floatLists.push_back(std::move(v));
        fields.emplace_back(name, floatLists.back().data(), PluginFieldType::kFLOAT32,
            static_cast<int32_t>(floatLists.back().size()));
        return *this;
    }

    PluginFieldCollection const* get()
    {
        fc.nbFields = static_cast<int32_t>(fields.size());
        fc.fields = fields.data();
        return &fc;
    }
};

inline IPluginV3OneBuild* build(IPluginV3* p)
{
    return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}

inline IPluginV3OneRuntime* runtime(IPluginV3* p)
{
    return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

inline IPluginV3OneCore* core(IPluginV3* p)
{
    return static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
}

inline DynamicPluginTensorDesc desc(DataType type, std::vector<int64_t> dims, TensorFormat format = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc d{};
    d.desc.type = type;
    d.desc.format = format;
    d.desc.dims.nbDims = static_cast<int32_t>(dims.size());
    for (size_t k = 0; k < dims.size(); ++k)
    {
        d.desc.dims.d[k] = dims[k];
    }
    d.min = d.desc.dims;
    d.max = d.desc.dims;
    d.opt = d.desc.dims;
    return d;
}

//! A build-time descriptor with dynamic dims (-1) and the optimization profile's min and max.
inline DynamicPluginTensorDesc ranged(DataType type, std::vector<int64_t> dims, std::vector<int64_t> min,
    std::vector<int64_t> max)
{
    DynamicPluginTensorDesc d = desc(type, std::move(dims));
    for (size_t k = 0; k < min.size(); ++k)
    {
        d.min.d[k] = min[k];
        d.max.d[k] = max[k];
        d.opt.d[k] = max[k];
    }
    return d;
}

//! A dimension expression that is not a build-time constant (its value is the one of this test's run).
inline IDimensionExpr const* symbolic(MockBuilder& builder, int64_t value)
{
    return builder.mImplObject.make(false, value);
}

//! Serialize -> create (runtime phase) -> serialize again: same fields.
inline void checkRoundTrip(IPluginCreatorV3One* c, IPluginV3* p, std::string const& what)
{
    PluginFieldCollection const* a = runtime(p)->getFieldsToSerialize();
    IPluginV3* q = c->createPlugin("restored", a, TensorRTPhase::kRUNTIME);
    check(q != nullptr, what + ": createPlugin from serialized fields");
    if (q == nullptr)
    {
        return;
    }
    // Re-read both (the first collection may point into p's scratch that a second call rebuilds).
    a = runtime(p)->getFieldsToSerialize();
    PluginFieldCollection const* b = runtime(q)->getFieldsToSerialize();
    bool same = a->nbFields == b->nbFields;
    for (int32_t k = 0; same && k < a->nbFields; ++k)
    {
        PluginField const& x = a->fields[k];
        PluginField const& y = b->fields[k];
        size_t const bytes = (x.type == PluginFieldType::kFLOAT32 || x.type == PluginFieldType::kINT32 ? 4 : 0)
            * static_cast<size_t>(x.length);
        same = strcmp(x.name, y.name) == 0 && x.type == y.type && x.length == y.length && bytes > 0
            && memcmp(x.data, y.data, bytes) == 0;
    }
    check(same, what + ": serialization round trip");
    IPluginV3* cl = p->clone();
    IPluginV3* at = runtime(p)->attachToContext(nullptr);
    check(cl != nullptr && at != nullptr && strcmp(core(cl)->getPluginName(), core(p)->getPluginName()) == 0,
        what + ": clone/attachToContext");
    delete cl;
    delete at;
    delete q;
}

inline PluginTensorDesc plainDesc(DataType type, std::vector<int64_t> dims, float scale = -1.0F)
{
    PluginTensorDesc d = desc(type, std::move(dims)).desc;
    d.scale = scale;
    return d;
}

} // namespace swin_test

#endif // SWIN_TRT_TESTS_PLUGIN_TEST_SUPPORT_H
