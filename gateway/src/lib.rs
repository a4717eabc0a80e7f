//! pinion-gateway: the venues orders go to.
