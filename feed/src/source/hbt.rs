//! Reader for hbt recordings.
