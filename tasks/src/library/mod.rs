//! The built-in tasks. Each file holds one task (or one family of tasks that
//! share a kernel): kwargs, doc, kernel and tests together.

mod arithmetic;
mod average;
mod classify_static;
mod column_space;
mod cross;
mod filter;
mod group_by;
mod head;
mod histogram;
mod keys;
mod math;
mod normalize;
mod null;
mod open;
mod open_array;
mod operand;
mod regression;
mod rename;
mod select;
mod simple_plot;
mod sort;
mod unique;
mod write;

use crate::TaskSpec;

pub(crate) static TASKS: &[TaskSpec] = &[
    null::SPEC,
    arithmetic::ADD,
    arithmetic::SUBTRACT,
    arithmetic::MULTIPLY,
    arithmetic::DIVIDE,
    arithmetic::POWER,
    math::LOG,
    math::SQUARE_ROOT,
    average::SPEC,
    cross::CROSS_AVERAGE,
    cross::CROSS_MAX,
    filter::SPEC,
    normalize::SPEC,
    classify_static::SPEC,
    column_space::SPEC,
    histogram::SPEC,
    regression::SPEC,
    sort::SPEC,
    unique::SPEC,
    group_by::SPEC,
    select::SPEC,
    rename::SPEC,
    head::SPEC,
    open::SPEC,
    open_array::SPEC,
    write::SPEC,
    simple_plot::SPEC,
];
