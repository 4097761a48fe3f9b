//! Builds adapted layers while a model is constructed, and the bank that holds their parameters.

use std::sync::Arc;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::bank::AdapterBank;
use crate::error::{PeftError, Result};
use crate::layer::PeftLinear;
use crate::methods::{AdapterMethod, FrozenWeight};
use crate::packed::PackedWeight;
use crate::plan::{AdapterGroup, AdapterPlan, PlannedLayer};
use crate::targets::{TargetMatcher, Targets};

/// Offers every linear layer of a model to the targets while the model is built.
///
/// See the crate documentation for a complete example.
pub struct Injector {
    /// `None` for [`Injector::none`].
    targeting: Option<Targeting>,
}

struct Targeting {
    matcher: TargetMatcher,
    plan: AdapterPlan,
    /// What the method read from each planned layer's weight, by slot (`None` when offered by shape).
    statistics: Vec<Option<Vec<f32>>>,
}

impl Injector {
    /// Validates the method's config and compiles the targets.
    pub fn new(method: impl Into<AdapterMethod>, targets: Targets) -> Result<Self> {
        let method = method.into();
        method.validate()?;
        let plan = AdapterPlan {
            method,
            targets: targets.clone(),
            layers: Vec::new(),
            groups: Vec::new(),
            untouched: Vec::new(),
        };
        Ok(Self { targeting: Some(Targeting { matcher: targets.compile()?, plan, statistics: Vec::new() }) })
    }

    /// An injector that adapts nothing: the model is built frozen, with an empty bank.
    pub fn none() -> Self {
        Self { targeting: None }
    }

    /// Offers a layer by name and shape; returns its slot in the plan if the targets match it.
    /// A plan made this way can be printed and counted; a bank for a method whose init reads the
    /// weight (DoRA) needs the layers themselves ([`Self::linear`]).
    pub fn offer(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Option<usize>> {
        match &mut self.targeting {
            Some(targeting) => targeting.offer(name, d_in, d_out),
            None => Ok(None),
        }
    }

    /// Wraps a pretrained linear layer: its weights are frozen, and it gets an adapter slot if targeted.
    pub fn linear<B: Backend>(&mut self, name: &str, base: Linear<B>) -> Result<PeftLinear<B>> {
        let [d_in, d_out] = base.weight.dims();
        let slot = self.offer(name, d_in, d_out)?;
        if let (Some(slot), Some(targeting)) = (slot, &mut self.targeting) {
            targeting.statistics.resize(slot + 1, None);
            targeting.statistics[slot] = targeting.plan.method.weight_statistic(&FrozenWeight::Dense(base.weight.val()));
        }
        Ok(PeftLinear::new(name, base, slot))
    }

    /// Wraps a pretrained weight kept in quantisation blocks (and its bias), frozen, with an
    /// adapter slot if targeted.
    pub fn packed_linear<B: Backend>(
        &mut self,
        name: &str,
        packed: Arc<PackedWeight>,
        bias: Option<Param<Tensor<B, 1>>>,
        device: &B::Device,
    ) -> Result<PeftLinear<B>> {
        let [d_in, d_out] = packed.dims();
        let slot = self.offer(name, d_in, d_out)?;
        if let (Some(slot), Some(targeting)) = (slot, &mut self.targeting) {
            targeting.statistics.resize(slot + 1, None);
            targeting.statistics[slot] = targeting.plan.method.weight_statistic(&FrozenWeight::<B>::Packed(&packed));
        }
        Ok(PeftLinear::new_packed(name, packed, bias, slot, device))
    }

    /// The plan so far; an error if the targets matched nothing (or for [`Injector::none`]).
    /// Printing it is the dry run.
    pub fn into_plan(self) -> Result<AdapterPlan> {
        self.targeting.ok_or(PeftError::EmptyBank)?.into_plan()
    }

    /// Creates the adapter's parameters on `device`: an empty bank for [`Injector::none`], an
    /// error if the targets matched nothing.
    pub fn finish<B: Backend>(self, device: &B::Device) -> Result<AdapterBank<B>> {
        match self.targeting {
            Some(mut targeting) => {
                let statistics = std::mem::take(&mut targeting.statistics);
                AdapterBank::init(targeting.into_plan()?, &statistics, device)
            }
            None => Ok(AdapterBank::empty()),
        }
    }
}

impl Targeting {
    fn offer(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Option<usize>> {
        let known = |n: &String| n == name;
        if self.plan.layers.iter().any(|l| known(&l.name)) || self.plan.untouched.iter().any(known) {
            return Err(PeftError::DuplicateLayer(name.to_string()));
        }
        if !self.matcher.matches(name) {
            self.plan.untouched.push(name.to_string());
            return Ok(None);
        }
        // A rank above the layer's sizes adds parameters, not expressiveness (and a huge one
        // would abort on allocation).
        let rank = self.plan.method.rank();
        let limit = self.plan.method.rank_limit(d_in, d_out);
        if rank > limit {
            return Err(PeftError::InvalidConfig(format!("rank {rank} exceeds {limit}, the size of layer `{name}` ({d_in} -> {d_out})")));
        }
        let group_name = self.plan.method.group_name(name);
        let slot = self.plan.layers.len();
        let group = match self.plan.groups.iter().position(|g| g.name == group_name) {
            Some(index) => {
                let group = &mut self.plan.groups[index];
                if group.d_in != d_in {
                    return Err(PeftError::GroupInputMismatch {
                        group: group.name.clone(),
                        first: self.plan.layers[group.members[0]].name.clone(),
                        first_d_in: group.d_in,
                        layer: name.to_string(),
                        d_in,
                    });
                }
                group.members.push(slot);
                index
            }
            None => {
                self.plan.groups.push(AdapterGroup {
                    name: group_name,
                    d_in,
                    members: vec![slot],
                });
                self.plan.groups.len() - 1
            }
        };
        self.plan.layers.push(PlannedLayer {
            name: name.to_string(),
            d_in,
            d_out,
            group,
        });
        Ok(Some(slot))
    }

    fn into_plan(self) -> Result<AdapterPlan> {
        if self.plan.layers.is_empty() {
            let untouched = &self.plan.untouched;
            return Err(PeftError::NoTargetMatched {
                targets: self.plan.targets.to_string(),
                offered: untouched.len(),
                examples: match untouched.is_empty() {
                    true => "none were offered".into(),
                    false => untouched.iter().take(4).cloned().collect::<Vec<_>>().join(", "),
                },
            });
        }
        Ok(self.plan)
    }
}
