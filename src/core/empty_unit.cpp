// Compiled into a layer library that has no source files of its own yet.
