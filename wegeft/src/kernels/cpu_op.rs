//! How a kernel joins a CPU backend: its pass on the plain backend and one autodiff op under
//! either of burn's checkpointing strategies, chosen by the tensors' concrete type (burn offers
//! no other way to add an op to an existing backend, see the module's documentation).

use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;

use super::cast;

/// A kernel with its own passes on the CPU backend `C`.
pub(super) trait CpuOp<C: Backend> {
    /// The op's tensors on backend `B`.
    type Inputs<B: Backend>: 'static;
    /// What it returns on backend `B`.
    type Output<B: Backend>: 'static;

    /// The op on `C`'s own tensors: nothing to record.
    fn plain(&self, inputs: Self::Inputs<C>) -> Self::Output<C>;

    /// The op under autodiff: the forward pass, recorded with its own backward step.
    fn tracked<S: CheckpointStrategy>(&self, inputs: Self::Inputs<Autodiff<C, S>>) -> Self::Output<Autodiff<C, S>>;
}

/// `op` on `inputs` when `B` is `C`, with or without autodiff; else the inputs back.
pub(super) fn run<Op: CpuOp<C>, C: Backend, B: Backend>(op: &Op, inputs: Op::Inputs<B>) -> Result<Op::Output<B>, Op::Inputs<B>> {
    let inputs = match cast::<Op::Inputs<B>, Op::Inputs<C>>(inputs) {
        Ok(inputs) => return Ok(same(op.plain(inputs))),
        Err(inputs) => inputs,
    };
    let inputs = match on_autodiff::<Op, C, B, NoCheckpointing>(op, inputs) {
        Ok(output) => return Ok(output),
        Err(inputs) => inputs,
    };
    on_autodiff::<Op, C, B, BalancedCheckpointing>(op, inputs)
}

/// `op` when `B` is `Autodiff<C, S>`; else the inputs back.
fn on_autodiff<Op: CpuOp<C>, C: Backend, B: Backend, S: CheckpointStrategy>(op: &Op, inputs: Op::Inputs<B>) -> Result<Op::Output<B>, Op::Inputs<B>> {
    let inputs = cast::<Op::Inputs<B>, Op::Inputs<Autodiff<C, S>>>(inputs)?;
    Ok(same(op.tracked::<S>(inputs)))
}

/// `value` as the type it is known to be (the output's backend is the input's).
fn same<From: 'static, To: 'static>(value: From) -> To {
    cast(value).unwrap_or_else(|_| unreachable!("the output's backend is the input's"))
}
