//! The adapter plan: which layers are adapted, with which shapes, in which group.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::methods::AdapterMethod;
use crate::targets::Targets;

/// One adapted layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedLayer {
    /// The layer's name, e.g. `blocks.3.attn.proj`.
    pub name: String,
    /// Input size.
    pub d_in: usize,
    /// Output size.
    pub d_out: usize,
    /// Index into [`AdapterPlan::groups`]: the parameters this layer uses.
    pub group: usize,
}

/// A set of layers that use one set of adapter parameters (a shared WeGeFT pair, or one LoRA layer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterGroup {
    /// The group's name: the module type (`blocks.*.attn.proj`) when shared, else the layer name.
    pub name: String,
    /// Input size shared by every member.
    pub d_in: usize,
    /// Indices into [`AdapterPlan::layers`]; the first member owns the parameters in adapter files.
    pub members: Vec<usize>,
}

/// What an adapter adapts. Built by [`crate::Injector`]; printing it is the dry run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterPlan {
    /// The method and its hyper-parameters.
    pub method: AdapterMethod,
    /// The targets that selected the layers.
    pub targets: Targets,
    /// The adapted layers, in the order they were offered.
    pub layers: Vec<PlannedLayer>,
    /// The parameter groups.
    pub groups: Vec<AdapterGroup>,
    /// Offered layers the targets did not match.
    #[serde(skip)]
    pub untouched: Vec<String>,
}

impl AdapterPlan {
    /// Fails unless the method's settings are usable and every index points at a layer or group
    /// that exists, each layer in the group that lists it (a plan read from a file).
    pub(crate) fn validate(&self) -> crate::Result<()> {
        self.method.validate()?;
        for (index, group) in self.groups.iter().enumerate() {
            if group.members.is_empty() {
                return Err(crate::PeftError::InvalidConfig(format!("group `{}` has no members", group.name)));
            }
            if let Some(member) = group.members.iter().find(|&&m| self.layers.get(m).is_none_or(|layer| layer.group != index)) {
                return Err(crate::PeftError::InvalidConfig(format!(
                    "group `{}` lists member {member}, which is not one of its {} layers",
                    group.name,
                    self.layers.len()
                )));
            }
        }
        if let Some(layer) = self.layers.iter().find(|layer| layer.group >= self.groups.len()) {
            return Err(crate::PeftError::InvalidConfig(format!("layer `{}` is in group {}, of {}", layer.name, layer.group, self.groups.len())));
        }
        Ok(())
    }

    /// The layer that owns group `group`'s parameters (its first member).
    pub fn owner(&self, group: usize) -> &PlannedLayer {
        &self.layers[self.groups[group].members[0]]
    }

    /// Looks a planned layer up by name.
    pub fn layer(&self, name: &str) -> Option<(usize, &PlannedLayer)> {
        self.layers
            .iter()
            .enumerate()
            .find(|(_, layer)| layer.name == name)
    }

    /// Trainable adapter parameters (shared tensors counted once, head excluded), known before
    /// any tensor exists (the dry run).
    pub fn adapter_params(&self) -> usize {
        self.stored_params(true)
    }

    /// Frozen tensors the adapter stores (VeRA's shared projections).
    pub fn adapter_frozen_params(&self) -> usize {
        self.stored_params(false)
    }

    fn stored_params(&self, trainable: bool) -> usize {
        crate::io::file_layout(self).iter().filter(|spec| spec.trainable == trainable).map(crate::methods::TensorSpec::len).sum()
    }
}

impl fmt::Display for AdapterPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} r={} s={} on {}: {} layers, {} parameter groups, {} adapter parameters",
            self.method.name(),
            self.method.rank(),
            self.method.scale(),
            self.targets,
            self.layers.len(),
            self.groups.len(),
            self.adapter_params()
        )?;
        let frozen = self.adapter_frozen_params();
        if frozen > 0 {
            writeln!(f, "  plus {frozen} frozen parameters the adapter stores (shared random projections)")?;
        }
        for layer in &self.layers {
            writeln!(
                f,
                "  {:<40} {:>6} -> {:<6} group {}",
                layer.name, layer.d_in, layer.d_out, self.groups[layer.group].name
            )?;
        }
        if !self.untouched.is_empty() {
            writeln!(f, "  not adapted: {}", self.untouched.join(", "))?;
        }
        Ok(())
    }
}
