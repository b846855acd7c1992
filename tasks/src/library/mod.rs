//! The built-in tasks, one file each: kwargs, doc, kernel and tests together.

mod null;
mod open_array;

use crate::TaskSpec;

pub(crate) static TASKS: &[TaskSpec] = &[null::SPEC, open_array::SPEC];
