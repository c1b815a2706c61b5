//! The `alloc` names the std prelude would bring, for `no_std` builds
//! (`use crate::prelude::*;` in every module outside `protocol`).

#[allow(unused_imports)]
pub(crate) use alloc::{
    borrow::ToOwned,
    boxed::Box,
    format,
    string::{String, ToString},
    vec,
    vec::Vec,
};
