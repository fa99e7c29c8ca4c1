// SPDX-License-Identifier: Apache-2.0
// The metadata store, on every engine (SQLite in memory, PostgreSQL): repositories, blob links,
// manifests, tags, referrers, image summaries, garbage-collection queries and cascades.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/store.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";

std::string dg(char c) { return "sha256:" + std::string(64, c); }

class RegistryStoreTest : public ::testing::TestWithParam<test::StoreEngine> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto s = home_.open();
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
    repo_ = make_repo("web/app");
  }

  Repository make_repo(const std::string& name, bool immutable = false) {
    Repository r;
    r.name = name;
    r.immutable_tags = immutable;
    r.created_at = 1000;
    auto created = store_->create_repository(r);
    EXPECT_TRUE(created) << created.error().message();
    return created ? *created : r;
  }

  void link(const Repository& repo, const std::string& digest, int64_t size, int64_t now = 100) {
    auto st = store_->link_blob(repo.id, digest, size, now);
    ASSERT_TRUE(st) << st.error().message();
  }

  // An image manifest record referencing the given blobs.
  static ManifestRecord image(const std::string& digest, std::vector<std::string> blobs,
                              int64_t pushed_at = 200) {
    ManifestRecord m;
    m.digest = digest;
    m.media_type = kOciManifest;
    m.content = "{\"manifest\":\"" + digest + "\"}";
    m.size = static_cast<int64_t>(m.content.size());
    m.blob_refs = std::move(blobs);
    m.total_size = m.size + 100;
    m.platform = "linux/amd64";
    m.pushed_at = pushed_at;
    return m;
  }

  static ManifestRecord index(const std::string& digest, std::vector<std::string> children,
                              int64_t pushed_at = 300) {
    ManifestRecord m;
    m.digest = digest;
    m.media_type = kOciIndex;
    m.content = "{\"index\":\"" + digest + "\"}";
    m.size = static_cast<int64_t>(m.content.size());
    m.manifest_refs = std::move(children);
    m.total_size = 5000;
    m.platform = "linux/amd64,linux/arm64";
    m.pushed_at = pushed_at;
    return m;
  }

  Result<PutManifestResult> put(const ManifestRecord& m, const std::string& tag = "",
                                bool immutable = false) {
    return store_->put_manifest(repo_, m, tag, immutable);
  }

  // Links config 'c' and layer 'l' and puts an image manifest with digest d under tag.
  void put_image(char d, const std::string& tag = "", int64_t pushed_at = 200) {
    link(repo_, dg('c'), 10);
    link(repo_, dg('1'), 1000);
    auto r = put(image(dg(d), {dg('c'), dg('1')}, pushed_at), tag);
    ASSERT_TRUE(r) << r.error().message();
  }

  std::vector<std::string> tags() {
    auto t = store_->list_tags(repo_.id, "", -1);
    EXPECT_TRUE(t);
    return t ? *t : std::vector<std::string>{};
  }

  test::StoreHome home_{GetParam()};
  MetadataStorePtr store_;
  Repository repo_;
};

// ---- Repositories ---------------------------------------------------------------------------

TEST_P(RegistryStoreTest, CreateAndGetRepository) {
  Repository r;
  r.name = "team/api";
  r.immutable_tags = true;
  r.mutable_tag_globs = {"latest", "dev-*"};
  r.created_at = 1234;
  auto created = store_->create_repository(r);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_GT(created->id, 0);
  EXPECT_NE(created->id, repo_.id);

  auto got = store_->get_repository("team/api");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->id, created->id);
  EXPECT_EQ(got->name, "team/api");
  EXPECT_TRUE(got->immutable_tags);
  EXPECT_THAT(got->mutable_tag_globs, ElementsAre("latest", "dev-*"));
  EXPECT_EQ(got->created_at, 1234);
}

TEST_P(RegistryStoreTest, CreateDuplicateRepositoryIsAlreadyExists) {
  Repository r;
  r.name = "web/app";
  auto dup = store_->create_repository(r);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  // The original is untouched.
  auto got = store_->get_repository("web/app");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, repo_.id);
  EXPECT_EQ(got->created_at, 1000);
}

TEST_P(RegistryStoreTest, GetMissingRepositoryIsNotFound) {
  auto got = store_->get_repository("nope");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::NotFound);
  auto del = store_->delete_repository("nope");
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), Errc::NotFound);
}

TEST_P(RegistryStoreTest, ListRepositoriesSortedAndPaginated) {
  make_repo("c");
  make_repo("a");
  make_repo("b/x");
  auto names = [](const std::vector<Repository>& rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) {
      out.push_back(r.name);
    }
    return out;
  };
  auto all = store_->list_repositories("", -1);
  ASSERT_TRUE(all);
  EXPECT_THAT(names(*all), ElementsAre("a", "b/x", "c", "web/app"));
  auto first = store_->list_repositories("", 2);
  ASSERT_TRUE(first);
  EXPECT_THAT(names(*first), ElementsAre("a", "b/x"));
  auto next = store_->list_repositories("b/x", 2);
  ASSERT_TRUE(next);
  EXPECT_THAT(names(*next), ElementsAre("c", "web/app"));
  auto after_last = store_->list_repositories("web/app", 2);
  ASSERT_TRUE(after_last);
  EXPECT_THAT(*after_last, IsEmpty());
  auto between = store_->list_repositories("b", -1);  // "b" itself is not a repository
  ASSERT_TRUE(between);
  EXPECT_THAT(names(*between), ElementsAre("b/x", "c", "web/app"));
  auto zero = store_->list_repositories("", 0);
  ASSERT_TRUE(zero);
  EXPECT_THAT(*zero, IsEmpty());
}

// ---- Blobs ----------------------------------------------------------------------------------

TEST_P(RegistryStoreTest, LinkBlobAndSizes) {
  auto other = make_repo("other");
  EXPECT_EQ(store_->blob_size(dg('a')).error().code(), Errc::NotFound);
  link(repo_, dg('a'), 42);
  auto linked = store_->linked_blob_size(repo_.id, dg('a'));
  ASSERT_TRUE(linked);
  EXPECT_EQ(*linked, 42);
  auto any = store_->blob_size(dg('a'));
  ASSERT_TRUE(any);
  EXPECT_EQ(*any, 42);
  // Known globally but not linked into the other repository.
  auto not_linked = store_->linked_blob_size(other.id, dg('a'));
  ASSERT_FALSE(not_linked);
  EXPECT_EQ(not_linked.error().code(), Errc::NotFound);
  // Linking twice is fine.
  link(repo_, dg('a'), 42, 150);
  EXPECT_EQ(*store_->linked_blob_size(repo_.id, dg('a')), 42);
}

TEST_P(RegistryStoreTest, UnlinkBlob) {
  link(repo_, dg('a'), 42);
  ASSERT_TRUE(store_->unlink_blob(repo_.id, dg('a')));
  auto linked = store_->linked_blob_size(repo_.id, dg('a'));
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().code(), Errc::NotFound);
  // The blob row survives until gc.
  EXPECT_TRUE(store_->blob_size(dg('a')));
  auto again = store_->unlink_blob(repo_.id, dg('a'));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
}

// ---- Manifests and tags ---------------------------------------------------------------------

TEST_P(RegistryStoreTest, PutAndGetManifestByTagAndDigest) {
  link(repo_, dg('c'), 10);
  link(repo_, dg('1'), 1000);
  ManifestRecord m = image(dg('m'), {dg('c'), dg('1')});
  m.annotations_json = R"({"a":"b"})";
  m.artifact_type = "application/x-test";
  m.subject = "";
  auto r = put(m, "latest");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->previous_tag_digest, "");

  for (const std::string& ref : {std::string("latest"), dg('m')}) {
    auto got = store_->get_manifest(repo_.id, ref);
    ASSERT_TRUE(got) << ref << ": " << got.error().message();
    EXPECT_EQ(got->digest, dg('m'));
    EXPECT_EQ(got->media_type, kOciManifest);
    EXPECT_EQ(got->content, m.content);
    EXPECT_EQ(got->size, m.size);
    EXPECT_EQ(got->artifact_type, "application/x-test");
    EXPECT_EQ(got->annotations_json, R"({"a":"b"})");
    EXPECT_EQ(got->platform, "linux/amd64");
    EXPECT_EQ(got->total_size, m.total_size);
    EXPECT_EQ(got->pushed_at, 200);
  }
  EXPECT_THAT(tags(), ElementsAre("latest"));
}

TEST_P(RegistryStoreTest, ManifestContentIsStoredByteExact) {
  link(repo_, dg('c'), 10);
  ManifestRecord m = image(dg('m'), {dg('c')});
  static constexpr char kBytes[] = "{\"x\":\"\0\xff\",  \n}";
  m.content = std::string(kBytes, sizeof(kBytes) - 1);
  ASSERT_EQ(m.content.size(), 14u);
  m.size = static_cast<int64_t>(m.content.size());
  ASSERT_TRUE(put(m));
  auto got = store_->get_manifest(repo_.id, dg('m'));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->content, m.content);
}

TEST_P(RegistryStoreTest, GetMissingManifestIsNotFound) {
  auto by_tag = store_->get_manifest(repo_.id, "latest");
  ASSERT_FALSE(by_tag);
  EXPECT_EQ(by_tag.error().code(), Errc::NotFound);
  auto by_digest = store_->get_manifest(repo_.id, dg('m'));
  ASSERT_FALSE(by_digest);
  EXPECT_EQ(by_digest.error().code(), Errc::NotFound);
}

TEST_P(RegistryStoreTest, ManifestsAreScopedToTheirRepository) {
  put_image('m', "latest");
  auto other = make_repo("other");
  EXPECT_FALSE(store_->get_manifest(other.id, "latest"));
  EXPECT_FALSE(store_->get_manifest(other.id, dg('m')));
}

TEST_P(RegistryStoreTest, PutManifestWithMissingBlobStoresNothing) {
  link(repo_, dg('c'), 10);  // config linked, layer not
  auto r = put(image(dg('m'), {dg('c'), dg('1')}), "latest");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::FailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr(dg('1')));
  EXPECT_FALSE(store_->get_manifest(repo_.id, dg('m')));
  EXPECT_FALSE(store_->get_manifest(repo_.id, "latest"));
  EXPECT_THAT(tags(), IsEmpty());
  auto images = store_->list_images(repo_.id);
  ASSERT_TRUE(images);
  EXPECT_THAT(*images, IsEmpty());
}

TEST_P(RegistryStoreTest, PutManifestWithBlobLinkedElsewhereIsRefused) {
  auto other = make_repo("other");
  link(other, dg('c'), 10);
  auto r = put(image(dg('m'), {dg('c')}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::FailedPrecondition);
}

TEST_P(RegistryStoreTest, PutIndexWithMissingChildStoresNothing) {
  put_image('a');
  auto r = put(index(dg('i'), {dg('a'), dg('b')}), "multi");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::FailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr(dg('b')));
  EXPECT_FALSE(store_->get_manifest(repo_.id, dg('i')));
  EXPECT_THAT(tags(), IsEmpty());
  // With both children present it goes through.
  put_image('b');
  auto ok2 = put(index(dg('i'), {dg('a'), dg('b')}), "multi");
  ASSERT_TRUE(ok2) << ok2.error().message();
  EXPECT_THAT(tags(), ElementsAre("multi"));
}

TEST_P(RegistryStoreTest, ImmutableTagRefusesAnotherDigest) {
  put_image('a', "v1");
  link(repo_, dg('c'), 10);
  auto r = put(image(dg('b'), {dg('c')}), "v1", /*immutable=*/true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::PermissionDenied);
  EXPECT_THAT(r.error().message(), HasSubstr("v1"));
  auto got = store_->get_manifest(repo_.id, "v1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->digest, dg('a'));
  // Nothing of the refused push was stored.
  EXPECT_FALSE(store_->get_manifest(repo_.id, dg('b')));
}

TEST_P(RegistryStoreTest, ImmutableTagAcceptsSameDigestAndNewTags) {
  put_image('a', "v1");
  auto same = put(image(dg('a'), {dg('c'), dg('1')}), "v1", /*immutable=*/true);
  ASSERT_TRUE(same) << same.error().message();
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->previous_tag_digest, dg('a'));
  auto fresh = put(image(dg('b'), {dg('c')}), "v2", /*immutable=*/true);
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_TRUE(fresh->created);
  EXPECT_EQ(store_->get_manifest(repo_.id, "v2")->digest, dg('b'));
}

TEST_P(RegistryStoreTest, SameDigestRePutIsFine) {
  put_image('a', "latest");
  auto again = put(image(dg('a'), {dg('c'), dg('1')}), "latest");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->previous_tag_digest, dg('a'));
  // Untagged re-put too, and a second tag for the same digest.
  auto untagged = put(image(dg('a'), {dg('c'), dg('1')}));
  ASSERT_TRUE(untagged);
  EXPECT_FALSE(untagged->created);
  auto second = put(image(dg('a'), {dg('c'), dg('1')}), "stable");
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->previous_tag_digest, "");
  EXPECT_THAT(tags(), ElementsAre("latest", "stable"));
  EXPECT_EQ(store_->get_manifest(repo_.id, "stable")->digest, dg('a'));
}

TEST_P(RegistryStoreTest, MutableTagMoves) {
  put_image('a', "latest");
  auto moved = put(image(dg('b'), {dg('c')}), "latest");
  ASSERT_TRUE(moved) << moved.error().message();
  EXPECT_TRUE(moved->created);
  EXPECT_EQ(moved->previous_tag_digest, dg('a'));
  EXPECT_EQ(store_->get_manifest(repo_.id, "latest")->digest, dg('b'));
  // The old manifest is still there by digest, just untagged.
  EXPECT_TRUE(store_->get_manifest(repo_.id, dg('a')));
  EXPECT_THAT(tags(), ElementsAre("latest"));
}

TEST_P(RegistryStoreTest, DeleteManifestRemovesItsTags) {
  put_image('a', "latest");
  ASSERT_TRUE(put(image(dg('a'), {dg('c')}), "v1"));
  put_image('b', "other");
  ASSERT_TRUE(store_->delete_manifest(repo_.id, dg('a')));
  EXPECT_FALSE(store_->get_manifest(repo_.id, dg('a')));
  EXPECT_FALSE(store_->get_manifest(repo_.id, "latest"));
  EXPECT_FALSE(store_->get_manifest(repo_.id, "v1"));
  EXPECT_THAT(tags(), ElementsAre("other"));
  auto again = store_->delete_manifest(repo_.id, dg('a'));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
}

TEST_P(RegistryStoreTest, DeleteManifestCanBeRePushed) {
  put_image('a', "latest");
  ASSERT_TRUE(store_->delete_manifest(repo_.id, dg('a')));
  auto again = put(image(dg('a'), {dg('c'), dg('1')}), "latest");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(again->created);
  EXPECT_EQ(store_->get_manifest(repo_.id, "latest")->digest, dg('a'));
}

TEST_P(RegistryStoreTest, DeleteTag) {
  put_image('a', "latest");
  ASSERT_TRUE(put(image(dg('a'), {dg('c')}), "v1"));
  ASSERT_TRUE(store_->delete_tag(repo_.id, "latest"));
  EXPECT_FALSE(store_->get_manifest(repo_.id, "latest"));
  EXPECT_TRUE(store_->get_manifest(repo_.id, "v1"));
  EXPECT_TRUE(store_->get_manifest(repo_.id, dg('a')));  // the manifest stays
  auto again = store_->delete_tag(repo_.id, "latest");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
}

TEST_P(RegistryStoreTest, ListTagsPaginated) {
  put_image('a', "v3");
  for (const char* t : {"v1", "latest", "v2", "a"}) {
    ASSERT_TRUE(put(image(dg('a'), {dg('c')}), t));
  }
  EXPECT_THAT(tags(), ElementsAre("a", "latest", "v1", "v2", "v3"));
  auto page1 = store_->list_tags(repo_.id, "", 2);
  ASSERT_TRUE(page1);
  EXPECT_THAT(*page1, ElementsAre("a", "latest"));
  auto page2 = store_->list_tags(repo_.id, "latest", 2);
  ASSERT_TRUE(page2);
  EXPECT_THAT(*page2, ElementsAre("v1", "v2"));
  auto page3 = store_->list_tags(repo_.id, "v2", 2);
  ASSERT_TRUE(page3);
  EXPECT_THAT(*page3, ElementsAre("v3"));
  auto page4 = store_->list_tags(repo_.id, "v3", 2);
  ASSERT_TRUE(page4);
  EXPECT_THAT(*page4, IsEmpty());
  // Another repository's tags are separate.
  auto other = make_repo("other");
  auto none = store_->list_tags(other.id, "", -1);
  ASSERT_TRUE(none);
  EXPECT_THAT(*none, IsEmpty());
}

TEST_P(RegistryStoreTest, ReferrersBySubject) {
  put_image('s', "latest");
  link(repo_, dg('e'), 2);
  ManifestRecord sig = image(dg('x'), {dg('e')}, 500);
  sig.subject = dg('s');
  sig.artifact_type = "application/vnd.example.signature";
  sig.annotations_json = R"({"k":"v"})";
  ASSERT_TRUE(put(sig));
  ManifestRecord sbom = image(dg('y'), {dg('e')}, 400);
  sbom.subject = dg('s');
  sbom.artifact_type = "application/spdx+json";
  ASSERT_TRUE(put(sbom));
  ManifestRecord unrelated = image(dg('z'), {dg('e')}, 450);
  unrelated.subject = dg('q');
  ASSERT_TRUE(put(unrelated));

  auto refs = store_->referrers(repo_.id, dg('s'));
  ASSERT_TRUE(refs) << refs.error().message();
  ASSERT_EQ(refs->size(), 2u);
  // Oldest push first.
  EXPECT_EQ((*refs)[0].digest, dg('y'));
  EXPECT_EQ((*refs)[0].artifact_type, "application/spdx+json");
  EXPECT_EQ((*refs)[1].digest, dg('x'));
  EXPECT_EQ((*refs)[1].media_type, kOciManifest);
  EXPECT_EQ((*refs)[1].size, sig.size);
  EXPECT_EQ((*refs)[1].artifact_type, "application/vnd.example.signature");
  EXPECT_EQ((*refs)[1].annotations_json, R"({"k":"v"})");

  auto none = store_->referrers(repo_.id, dg('m'));
  ASSERT_TRUE(none);
  EXPECT_THAT(*none, IsEmpty());
  auto other = make_repo("other");
  auto elsewhere = store_->referrers(other.id, dg('s'));
  ASSERT_TRUE(elsewhere);
  EXPECT_THAT(*elsewhere, IsEmpty());
}

TEST_P(RegistryStoreTest, ListImagesGroupsTags) {
  put_image('a', "v1", 100);
  ASSERT_TRUE(put(image(dg('a'), {dg('c')}, 100), "latest"));
  ASSERT_TRUE(put(image(dg('a'), {dg('c')}, 100), "stable"));
  put_image('b', "", 300);  // untagged, newest
  ASSERT_TRUE(put(index(dg('i'), {dg('a'), dg('b')}, 200), "multi"));

  auto images = store_->list_images(repo_.id);
  ASSERT_TRUE(images) << images.error().message();
  ASSERT_EQ(images->size(), 3u);
  // Newest first.
  const auto& b = (*images)[0];
  EXPECT_EQ(b.digest, dg('b'));
  EXPECT_THAT(b.tags, IsEmpty());
  const auto& i = (*images)[1];
  EXPECT_EQ(i.digest, dg('i'));
  EXPECT_EQ(i.media_type, kOciIndex);
  EXPECT_THAT(i.tags, ElementsAre("multi"));
  EXPECT_EQ(i.size, 5000);
  EXPECT_EQ(i.platform, "linux/amd64,linux/arm64");
  EXPECT_EQ(i.pushed_at, 200);
  const auto& a = (*images)[2];
  EXPECT_EQ(a.digest, dg('a'));
  EXPECT_THAT(a.tags, ElementsAre("latest", "stable", "v1"));
  EXPECT_EQ(a.size, image(dg('a'), {}).total_size);
  EXPECT_EQ(a.platform, "linux/amd64");
  EXPECT_EQ(a.pushed_at, 100);
}

// ---- Garbage collection ---------------------------------------------------------------------

TEST_P(RegistryStoreTest, UnreferencedBlobsHonorCutoffAndReferences) {
  link(repo_, dg('c'), 10, 100);
  link(repo_, dg('1'), 1000, 100);
  ASSERT_TRUE(put(image(dg('m'), {dg('c'), dg('1')})));
  link(repo_, dg('o'), 5, 100);   // old, unreferenced
  link(repo_, dg('n'), 5, 1000);  // new, unreferenced

  auto before_new = store_->unreferenced_blobs(500);
  ASSERT_TRUE(before_new);
  EXPECT_THAT(*before_new, UnorderedElementsAre(dg('o')));
  auto all = store_->unreferenced_blobs(2000);
  ASSERT_TRUE(all);
  EXPECT_THAT(*all, UnorderedElementsAre(dg('o'), dg('n')));
  // The cutoff is strict: linked exactly at it is still in grace.
  auto at = store_->unreferenced_blobs(1000);
  ASSERT_TRUE(at);
  EXPECT_THAT(*at, UnorderedElementsAre(dg('o')));
}

TEST_P(RegistryStoreTest, RelinkRefreshesGrace) {
  link(repo_, dg('o'), 5, 100);
  link(repo_, dg('o'), 5, 900);
  auto r = store_->unreferenced_blobs(500);
  ASSERT_TRUE(r);
  EXPECT_THAT(*r, IsEmpty());
  auto forgot = store_->forget_blob_if_unreferenced(dg('o'), 500);
  ASSERT_TRUE(forgot);
  EXPECT_FALSE(*forgot);
}

TEST_P(RegistryStoreTest, ReferenceFromAnyRepositoryKeepsBlob) {
  auto other = make_repo("other");
  link(repo_, dg('c'), 10, 100);
  link(other, dg('c'), 10, 100);
  Repository saved = repo_;
  repo_ = other;
  ASSERT_TRUE(put(image(dg('m'), {dg('c')})));
  repo_ = saved;
  auto r = store_->unreferenced_blobs(10000);
  ASSERT_TRUE(r);
  EXPECT_THAT(*r, IsEmpty());
}

TEST_P(RegistryStoreTest, ForgetBlobIfUnreferenced) {
  link(repo_, dg('c'), 10, 100);
  ASSERT_TRUE(put(image(dg('m'), {dg('c')})));
  link(repo_, dg('o'), 5, 100);
  link(repo_, dg('n'), 5, 1000);

  // Referenced: kept.
  auto ref = store_->forget_blob_if_unreferenced(dg('c'), 5000);
  ASSERT_TRUE(ref);
  EXPECT_FALSE(*ref);
  EXPECT_TRUE(store_->blob_size(dg('c')));
  // Too new: kept.
  auto young = store_->forget_blob_if_unreferenced(dg('n'), 500);
  ASSERT_TRUE(young);
  EXPECT_FALSE(*young);
  EXPECT_TRUE(store_->linked_blob_size(repo_.id, dg('n')));
  // Old and unreferenced: forgotten, with its links.
  auto old = store_->forget_blob_if_unreferenced(dg('o'), 500);
  ASSERT_TRUE(old);
  EXPECT_TRUE(*old);
  EXPECT_EQ(store_->blob_size(dg('o')).error().code(), Errc::NotFound);
  EXPECT_EQ(store_->linked_blob_size(repo_.id, dg('o')).error().code(), Errc::NotFound);
  // Unknown: nothing to do.
  auto unknown = store_->forget_blob_if_unreferenced(dg('9'), 500);
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(*unknown);

  auto blobs = store_->all_blobs();
  ASSERT_TRUE(blobs);
  EXPECT_THAT(*blobs, ElementsAre(std::make_pair(dg('c'), int64_t{10}),
                                  std::make_pair(dg('n'), int64_t{5})));
}

TEST_P(RegistryStoreTest, DeletingManifestReleasesItsBlobs) {
  link(repo_, dg('c'), 10, 100);
  ASSERT_TRUE(put(image(dg('m'), {dg('c')})));
  auto before = store_->unreferenced_blobs(5000);
  ASSERT_TRUE(before);
  EXPECT_THAT(*before, IsEmpty());
  ASSERT_TRUE(store_->delete_manifest(repo_.id, dg('m')));
  auto after = store_->unreferenced_blobs(5000);
  ASSERT_TRUE(after);
  EXPECT_THAT(*after, ElementsAre(dg('c')));
}

// The header promises blobs "that have no link at all" are unreferenced whatever their age:
// nothing can reach such a blob any more.
// The grace period protects an unlinked blob too: a cross-repository mount may be racing gc.
TEST_P(RegistryStoreTest, UnlinkedBlobWaitsOutTheGracePeriod) {
  link(repo_, dg('u'), 5, 1000);
  ASSERT_TRUE(store_->unlink_blob(repo_.id, dg('u')));
  auto early = store_->unreferenced_blobs(500);
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty());
  auto later = store_->unreferenced_blobs(1001);
  ASSERT_TRUE(later);
  EXPECT_THAT(*later, ElementsAre(dg('u')));
}

TEST_P(RegistryStoreTest, DeleteRepositoryCascades) {
  put_image('a', "latest");
  link(repo_, dg('s'), 3, 100);
  ManifestRecord sig = image(dg('x'), {dg('s')}, 500);
  sig.subject = dg('a');
  ASSERT_TRUE(put(sig, "sig"));
  ASSERT_TRUE(put(index(dg('i'), {dg('a')}), "multi"));
  auto keep = make_repo("keep");
  link(keep, dg('k'), 7, 100);
  Repository saved = repo_;
  repo_ = keep;
  ASSERT_TRUE(put(image(dg('K'), {dg('k')}), "latest"));
  repo_ = saved;

  ASSERT_TRUE(store_->delete_repository("web/app"));
  auto gone = store_->get_repository("web/app");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  EXPECT_FALSE(store_->get_manifest(saved.id, dg('a')));
  EXPECT_FALSE(store_->get_manifest(saved.id, "latest"));
  auto t = store_->list_tags(saved.id, "", -1);
  ASSERT_TRUE(t);
  EXPECT_THAT(*t, IsEmpty());
  auto refs = store_->referrers(saved.id, dg('a'));
  ASSERT_TRUE(refs);
  EXPECT_THAT(*refs, IsEmpty());
  EXPECT_EQ(store_->linked_blob_size(saved.id, dg('c')).error().code(), Errc::NotFound);
  // Its blobs are now unreferenced (files go at gc); the other repository's are not.
  auto unref = store_->unreferenced_blobs(10000);
  ASSERT_TRUE(unref);
  EXPECT_THAT(*unref, UnorderedElementsAre(dg('c'), dg('1'), dg('s')));
  // The other repository is intact.
  EXPECT_TRUE(store_->get_repository("keep"));
  EXPECT_EQ(store_->get_manifest(keep.id, "latest")->digest, dg('K'));
  auto manifests = store_->all_manifests();
  ASSERT_TRUE(manifests);
  ASSERT_EQ(manifests->size(), 1u);
  EXPECT_EQ((*manifests)[0].repository, "keep");
  // The name can be reused, starting empty.
  auto reborn = make_repo("web/app");
  auto images = store_->list_images(reborn.id);
  ASSERT_TRUE(images);
  EXPECT_THAT(*images, IsEmpty());
}

TEST_P(RegistryStoreTest, AllManifestsListsEveryRepository) {
  put_image('a', "latest");
  auto other = make_repo("alpha");
  link(other, dg('c'), 10);
  Repository saved = repo_;
  repo_ = other;
  ASSERT_TRUE(put(image(dg('b'), {dg('c')})));
  repo_ = saved;
  auto all = store_->all_manifests();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].repository, "alpha");
  EXPECT_EQ((*all)[0].digest, dg('b'));
  EXPECT_EQ((*all)[1].repository, "web/app");
  EXPECT_EQ((*all)[1].digest, dg('a'));
  EXPECT_EQ((*all)[1].content, image(dg('a'), {}).content);
}

INSTANTIATE_TEST_SUITE_P(Engines, RegistryStoreTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
