//! The project's own binary recording format, its reader, and the recorder thread.
