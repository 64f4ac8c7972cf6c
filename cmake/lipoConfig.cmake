# CMake package configuration of lipo: find_package(lipo) defines the imported target
# lipo::lipo (liblipo.so plus the directory holding lipo.h and lipo.hpp).
get_filename_component(_lipo_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET lipo::lipo)
  add_library(lipo::lipo SHARED IMPORTED)
  set_target_properties(lipo::lipo PROPERTIES
    IMPORTED_LOCATION "${_lipo_prefix}/lib/liblipo.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${_lipo_prefix}/include")
endif()
set(lipo_FOUND TRUE)
unset(_lipo_prefix)
