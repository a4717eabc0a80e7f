//! Reader for cryptofeed recordings.
