// The allocator of request and response header fields: a pointer to a
// memory resource, the heap unless the server gives a connection's arena.
// Not std::pmr::polymorphic_allocator, because Beast's fields need an
// allocator they can assign. A copied container goes to the heap, so a
// copy never points into an arena that is reset after the request.
#pragma once

#include <cstddef>
#include <memory_resource>
#include <type_traits>

namespace feed::http {

template <class T>
class arena_allocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::false_type;

  arena_allocator() noexcept = default;
  explicit arena_allocator(std::pmr::memory_resource* arena) noexcept : resource_(arena) {}
  template <class U>
  arena_allocator(const arena_allocator<U>& other) noexcept : resource_(other.resource()) {}

  T* allocate(std::size_t n) { return static_cast<T*>(resource_->allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { resource_->deallocate(p, n * sizeof(T), alignof(T)); }
  arena_allocator select_on_container_copy_construction() const noexcept { return {}; }

  std::pmr::memory_resource* resource() const noexcept { return resource_; }
  template <class U>
  bool operator==(const arena_allocator<U>& other) const noexcept {
    return resource_ == other.resource();
  }

 private:
  std::pmr::memory_resource* resource_ = std::pmr::new_delete_resource();
};

using field_allocator = arena_allocator<char>;

}  // namespace feed::http
