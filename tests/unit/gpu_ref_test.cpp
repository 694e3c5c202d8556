#include "selection/gpu_ref.hpp"
#include "snapshot_builder.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace withgpu::selection {
namespace {

using ::testing::HasSubstr;
using withgpu::testing::make_gpu;
using withgpu::testing::uuid_for;

GpuRef parse_one(const std::string& text, bool allow_names = true) {
    const auto refs = parse_gpu_list(text, "--exclude", allow_names);
    EXPECT_TRUE(refs.has_value()) << text << ": " << refs.error().message;
    if (!refs || refs->size() != 1) {
        ADD_FAILURE() << text << " did not give exactly one ref";
        return {};
    }
    return refs->front();
}

TEST(ParseGpuList, Indices) {
    const auto refs = parse_gpu_list("0,2,10", "--gpu", false);
    ASSERT_TRUE(refs.has_value());
    ASSERT_EQ(refs->size(), 3U);
    EXPECT_EQ((*refs)[0].kind, GpuRef::Kind::index);
    EXPECT_EQ((*refs)[0].index, 0U);
    EXPECT_EQ((*refs)[1].index, 2U);
    EXPECT_EQ((*refs)[2].index, 10U);
    EXPECT_EQ((*refs)[2].text, "10");
}

TEST(ParseGpuList, WhitespaceAroundItemsIsIgnored) {
    const auto refs = parse_gpu_list(" 0 ,\t2 ", "--gpu", false);
    ASSERT_TRUE(refs.has_value());
    ASSERT_EQ(refs->size(), 2U);
    EXPECT_EQ((*refs)[0].index, 0U);
    EXPECT_EQ((*refs)[1].index, 2U);
    EXPECT_EQ((*refs)[1].text, "2");
}

TEST(ParseGpuList, Uuids) {
    const auto full = parse_one(uuid_for(3));
    EXPECT_EQ(full.kind, GpuRef::Kind::uuid);
    EXPECT_EQ(full.key, uuid_for(3));

    const auto prefix = parse_one("GPU-13aa");
    EXPECT_EQ(prefix.kind, GpuRef::Kind::uuid);
    EXPECT_EQ(prefix.key, "GPU-13aa");

    const auto lower = parse_one("gpu-13AA");
    EXPECT_EQ(lower.kind, GpuRef::Kind::uuid);
    EXPECT_EQ(lower.text, "gpu-13AA");
}

struct BusCase {
    std::string text;
    std::string key;
};

void PrintTo(const BusCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ParseBusId : public ::testing::TestWithParam<BusCase> {};

TEST_P(ParseBusId, Normalises) {
    const auto ref = parse_one(GetParam().text);
    EXPECT_EQ(ref.kind, GpuRef::Kind::pci_bus_id);
    EXPECT_EQ(ref.key, GetParam().key);
    EXPECT_EQ(ref.text, GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(Forms,
                         ParseBusId,
                         ::testing::Values(BusCase{"00000000:17:00.0", "00000000:17:00.0"},
                                           BusCase{"0000:17:00.0", "00000000:17:00.0"},
                                           BusCase{"17:00.0", "00000000:17:00.0"},
                                           BusCase{"0000:3b:00.0", "00000000:3B:00.0"},
                                           BusCase{"3b:00.1", "00000000:3B:00.1"},
                                           BusCase{"1:af:1f.7", "00000001:AF:1F.7"},
                                           BusCase{"0000000a:AF:00.0", "0000000A:AF:00.0"}));

TEST(ParseGpuList, NamesWhenAllowed) {
    const auto ref = parse_one("name:V100");
    EXPECT_EQ(ref.kind, GpuRef::Kind::name_substring);
    EXPECT_EQ(ref.key, "V100");
    EXPECT_EQ(ref.text, "name:V100");

    const auto upper = parse_one("NAME:a100 80GB");
    EXPECT_EQ(upper.kind, GpuRef::Kind::name_substring);
    EXPECT_EQ(upper.key, "a100 80GB");
}

TEST(ParseGpuList, NamesOnlyInExclude) {
    const auto refs = parse_gpu_list("0,name:V100", "--gpu", false);
    ASSERT_FALSE(refs.has_value());
    EXPECT_EQ(refs.error().kind, ErrorKind::usage);
    EXPECT_THAT(refs.error().message, HasSubstr("--gpu"));
    EXPECT_THAT(refs.error().message, HasSubstr("name:V100"));
    EXPECT_THAT(refs.error().message, HasSubstr("name: is only valid in --exclude"));
}

TEST(ParseGpuList, EmptyNameIsAnError) {
    const auto refs = parse_gpu_list("name:", "--exclude", true);
    ASSERT_FALSE(refs.has_value());
    EXPECT_EQ(refs.error().kind, ErrorKind::usage);
    EXPECT_THAT(refs.error().message, HasSubstr("name:"));
}

TEST(ParseGpuList, MigIsRejectedClearly) {
    const auto refs = parse_gpu_list("MIG-4f1c2a3b-aaaa-bbbb-cccc-ddddeeeeffff", "--gpu", false);
    ASSERT_FALSE(refs.has_value());
    EXPECT_EQ(refs.error().kind, ErrorKind::usage);
    EXPECT_THAT(refs.error().message, HasSubstr("--gpu"));
    EXPECT_THAT(refs.error().message, HasSubstr("MIG devices are not supported yet"));

    const auto lower = parse_gpu_list("0,mig-4f1c", "--exclude", true);
    ASSERT_FALSE(lower.has_value());
    EXPECT_THAT(lower.error().message, HasSubstr("MIG devices are not supported yet"));
}

class ParseGpuListInvalid : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseGpuListInvalid, NamesOptionAndItem) {
    const std::string& text = GetParam();
    const auto refs = parse_gpu_list(text, "--gpu", false);
    ASSERT_FALSE(refs.has_value()) << text;
    EXPECT_EQ(refs.error().kind, ErrorKind::usage) << text;
    EXPECT_THAT(refs.error().message, HasSubstr("--gpu")) << text;
    EXPECT_THAT(refs.error().hint, HasSubstr("GPU-")) << text;
    EXPECT_THAT(refs.error().hint, HasSubstr("00000000:17:00.0")) << text;
    EXPECT_THAT(refs.error().hint, ::testing::Not(HasSubstr("name:"))) << text;
}

INSTANTIATE_TEST_SUITE_P(Items,
                         ParseGpuListInvalid,
                         ::testing::Values("foo",
                                           "",
                                           " ",
                                           "0,,2",
                                           "0,",
                                           ",0",
                                           "GPU-",
                                           "GPU-xyz",
                                           "GPU",
                                           "-1",
                                           "+1",
                                           "1.5",
                                           "17:00",
                                           "17:0.0",
                                           "17:00.00",
                                           "117:00.0",
                                           "000000000:17:00.0",
                                           "0000:17:00:00.0",
                                           "zz:00.0",
                                           "99999999999"));

TEST(ParseGpuList, ErrorQuotesTheOffendingItem) {
    const auto refs = parse_gpu_list("0,bogus,2", "--exclude", true);
    ASSERT_FALSE(refs.has_value());
    EXPECT_THAT(refs.error().message, HasSubstr("--exclude \"bogus\""));
    EXPECT_THAT(refs.error().hint, HasSubstr("name:SUBSTRING"));
}

TEST(ParseGpuList, MixedKinds) {
    const auto refs = parse_gpu_list("1,GPU-12,0000:19:00.0,name:H100", "--exclude", true);
    ASSERT_TRUE(refs.has_value());
    ASSERT_EQ(refs->size(), 4U);
    EXPECT_EQ((*refs)[0].kind, GpuRef::Kind::index);
    EXPECT_EQ((*refs)[1].kind, GpuRef::Kind::uuid);
    EXPECT_EQ((*refs)[2].kind, GpuRef::Kind::pci_bus_id);
    EXPECT_EQ((*refs)[3].kind, GpuRef::Kind::name_substring);
}

// --- matches ----------------------------------------------------------------------------------

TEST(Matches, Index) {
    const auto ref = parse_one("2");
    EXPECT_TRUE(matches(ref, make_gpu(2)));
    EXPECT_FALSE(matches(ref, make_gpu(1)));
    EXPECT_FALSE(matches(ref, make_gpu(12)));
}

TEST(Matches, UuidIsCaseInsensitivePrefix) {
    const auto gpu = make_gpu(3); // GPU-13aa1bb2-...
    EXPECT_TRUE(matches(parse_one(uuid_for(3)), gpu));
    EXPECT_TRUE(matches(parse_one("GPU-13"), gpu));
    EXPECT_TRUE(matches(parse_one("gpu-13AA1BB2"), gpu));
    EXPECT_FALSE(matches(parse_one("GPU-12"), gpu));
    // A piece from the middle is not a prefix.
    EXPECT_FALSE(matches(parse_one("GPU-aa1bb2"), gpu));
    // Longer than the real UUID.
    EXPECT_FALSE(matches(parse_one(uuid_for(3) + "0"), gpu));
}

TEST(Matches, UuidNeverMatchesAnUnreadGpu) {
    auto gpu = make_gpu(3);
    gpu.uuid.clear();
    EXPECT_FALSE(matches(parse_one("GPU-1"), gpu));
}

TEST(Matches, BusIdInEveryForm) {
    auto gpu = make_gpu(4); // 00000000:1b:00.0 (lower case, as a driver might report)
    for (const std::string text : {"00000000:1B:00.0", "0000:1b:00.0", "1b:00.0", "1B:00.0"}) {
        EXPECT_TRUE(matches(parse_one(text), gpu)) << text;
    }
    EXPECT_FALSE(matches(parse_one("1b:00.1"), gpu));
    EXPECT_FALSE(matches(parse_one("0001:1b:00.0"), gpu));
    EXPECT_FALSE(matches(parse_one("1c:00.0"), gpu));

    gpu.pci_bus_id = "0000:1B:00.0"; // legacy short domain
    EXPECT_TRUE(matches(parse_one("00000000:1b:00.0"), gpu));
}

TEST(Matches, NameIsCaseInsensitiveSubstring) {
    const auto gpu = make_gpu(0, "Tesla V100-SXM2-16GB");
    EXPECT_TRUE(matches(parse_one("name:V100"), gpu));
    EXPECT_TRUE(matches(parse_one("name:v100-sxm2"), gpu));
    EXPECT_TRUE(matches(parse_one("name:tesla"), gpu));
    EXPECT_FALSE(matches(parse_one("name:A100"), gpu));
    EXPECT_FALSE(matches(parse_one("name:V100-PCIE"), gpu));
}

// --- unique prefixes ---------------------------------------------------------------------------

gpu::MachineSnapshot machine_of(std::vector<std::string> uuids) {
    gpu::MachineSnapshot machine;
    for (unsigned i = 0; i < uuids.size(); ++i) {
        machine.gpus.push_back(make_gpu(i));
        machine.gpus.back().uuid = uuids[i];
    }
    return machine;
}

TEST(UniquePrefixes, AmbiguousPrefixIsAUsageErrorNamingEveryMatch) {
    const auto machine = machine_of({"GPU-5a000000", "GPU-7b000000", "GPU-5c000000"});
    const auto refs = parse_gpu_list("1,GPU-5", "--gpu", false);
    ASSERT_TRUE(refs.has_value());
    const auto checked = check_unique_prefixes(*refs, "--gpu", machine);
    ASSERT_FALSE(checked.has_value());
    EXPECT_EQ(checked.error().kind, ErrorKind::usage);
    EXPECT_EQ(checked.error().message,
              "--gpu GPU-5 is ambiguous: it matches GPU 0 (GPU-5a000000), GPU 2 (GPU-5c000000)");
    EXPECT_THAT(checked.error().hint, HasSubstr("more of the UUID"));
}

TEST(UniquePrefixes, UniquePrefixesFullUuidsAndOtherKindsPass) {
    const auto machine = machine_of({"GPU-5a000000", "GPU-7b000000", "GPU-5c000000"});
    for (const std::string text :
         {"GPU-5a", "gpu-5C0", "GPU-5a000000", "GPU-9", "0,1,2", "name:A100", "00000000:17:00.0"}) {
        const auto refs = parse_gpu_list(text, "--exclude", true);
        ASSERT_TRUE(refs.has_value()) << text;
        EXPECT_TRUE(check_unique_prefixes(*refs, "--exclude", machine).has_value()) << text;
    }
}

TEST(UniquePrefixes, CaseDoesNotHideAnAmbiguity) {
    const auto machine = machine_of({"GPU-ab000000", "GPU-AB111111"});
    const auto refs = parse_gpu_list("gpu-Ab", "--exclude", true);
    ASSERT_TRUE(refs.has_value());
    const auto checked = check_unique_prefixes(*refs, "--exclude", machine);
    ASSERT_FALSE(checked.has_value());
    EXPECT_THAT(checked.error().message, HasSubstr("--exclude gpu-Ab is ambiguous"));
}

// --- CUDA_VISIBLE_DEVICES ---------------------------------------------------------------------

std::vector<std::string> ref_texts(const VisibleDevices& visible) {
    std::vector<std::string> texts;
    for (const auto& ref : visible.refs) {
        texts.push_back(ref.text);
    }
    return texts;
}

TEST(CudaVisibleDevices, UnsetIsUnrestricted) {
    const auto visible = parse_cuda_visible_devices(std::nullopt);
    ASSERT_TRUE(visible.has_value());
    EXPECT_FALSE(visible->restricted);
    EXPECT_TRUE(visible->refs.empty());
}

TEST(CudaVisibleDevices, EmptyAndNoDevFilesMeanNoDevice) {
    for (const std::string value : {"", "NoDevFiles"}) {
        const auto visible = parse_cuda_visible_devices(value);
        ASSERT_TRUE(visible.has_value()) << value;
        EXPECT_TRUE(visible->restricted) << value;
        EXPECT_TRUE(visible->refs.empty()) << value;
        EXPECT_EQ(visible->original, value);
    }
}

TEST(CudaVisibleDevices, Indices) {
    const auto visible = parse_cuda_visible_devices("1,2");
    ASSERT_TRUE(visible.has_value());
    EXPECT_TRUE(visible->restricted);
    EXPECT_EQ(visible->original, "1,2");
    ASSERT_EQ(visible->refs.size(), 2U);
    EXPECT_EQ(visible->refs[0].kind, GpuRef::Kind::index);
    EXPECT_EQ(visible->refs[0].index, 1U);
    EXPECT_EQ(visible->refs[1].index, 2U);
    EXPECT_TRUE(matches(visible->refs[1], make_gpu(2)));
}

TEST(CudaVisibleDevices, UuidsAndPrefixes) {
    const auto visible = parse_cuda_visible_devices(uuid_for(0) + ",GPU-13");
    ASSERT_TRUE(visible.has_value());
    ASSERT_EQ(visible->refs.size(), 2U);
    EXPECT_EQ(visible->refs[0].kind, GpuRef::Kind::uuid);
    EXPECT_TRUE(matches(visible->refs[0], make_gpu(0)));
    EXPECT_TRUE(matches(visible->refs[1], make_gpu(3)));
    EXPECT_FALSE(matches(visible->refs[1], make_gpu(0)));
}

TEST(CudaVisibleDevices, ParsingStopsAtFirstInvalidItem) {
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("0,foo,2").value()),
              (std::vector<std::string>{"0"}));
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("0,,2").value()),
              (std::vector<std::string>{"0"}));
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("1,2.5,3").value()),
              (std::vector<std::string>{"1"}));
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("foo,1").value()), std::vector<std::string>{});
    // The bus-id form is not a CUDA_VISIBLE_DEVICES form.
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("1,00000000:17:00.0,2").value()),
              (std::vector<std::string>{"1"}));
}

TEST(CudaVisibleDevices, NegativeIndexEndsTheList) {
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("0,-1,2").value()),
              (std::vector<std::string>{"0"}));
    const auto hidden = parse_cuda_visible_devices("-1");
    ASSERT_TRUE(hidden.has_value());
    EXPECT_TRUE(hidden->restricted);
    EXPECT_TRUE(hidden->refs.empty());
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices("2,-5").value()),
              (std::vector<std::string>{"2"}));
}

TEST(CudaVisibleDevices, WhitespaceAroundItems) {
    EXPECT_EQ(ref_texts(parse_cuda_visible_devices(" 1 , 2 ").value()),
              (std::vector<std::string>{"1", "2"}));
}

TEST(CudaVisibleDevices, MigIsAnEnvironmentError) {
    for (const std::string value :
         {"MIG-4f1c2a3b-aaaa-bbbb-cccc-ddddeeeeffff", "0,MIG-4f1c", "MIG-GPU-13aa/1/0"}) {
        const auto visible = parse_cuda_visible_devices(value);
        ASSERT_FALSE(visible.has_value()) << value;
        EXPECT_EQ(visible.error().kind, ErrorKind::failed);
        EXPECT_THAT(visible.error().message,
                    HasSubstr("CUDA_VISIBLE_DEVICES names a MIG device; with-gpu does not "
                              "support MIG yet"));
        EXPECT_THAT(visible.error().message, HasSubstr(value));
        EXPECT_FALSE(visible.error().hint.empty());
    }
}

TEST(CudaVisibleDevices, MigAfterAnInvalidItemIsIgnoredLikeCuda) {
    const auto visible = parse_cuda_visible_devices("0,-1,MIG-4f1c");
    ASSERT_TRUE(visible.has_value());
    EXPECT_EQ(ref_texts(*visible), (std::vector<std::string>{"0"}));
}

} // namespace
} // namespace withgpu::selection
