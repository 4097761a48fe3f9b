//! A layer's name as burn's module walks see it, so that code walking a model can find its
//! adapted layers without a hand-written list of them.

use std::marker::PhantomData;

use burn::module::{
    AutodiffModule, Content, Devices, EmptyRecord, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper,
    ModuleVisitor,
};
use burn::tensor::backend::{AutodiffBackend, Backend};

/// The `container_type` a [`LayerName`] announces itself with to visitors and mappers.
pub(crate) const PEFT_LINEAR: &str = "wegeft:PeftLinear";

/// The name (and plan slot) of a [`crate::PeftLinear`]. It holds no tensors; when a visitor or a
/// mapper walks the model, it enters and leaves a module named after the layer, just before the
/// layer's frozen weight is visited. [`crate::Adapted`] uses that to merge and export.
#[derive(Clone, Debug)]
pub struct LayerName<B: Backend> {
    name: String,
    slot: Option<usize>,
    backend: PhantomData<B>,
}

impl<B: Backend> LayerName<B> {
    pub(crate) fn new(name: &str, slot: Option<usize>) -> Self {
        Self { name: name.to_string(), slot, backend: PhantomData }
    }

    /// The layer's name, e.g. `blocks.3.attn.proj`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The layer's index in its bank's plan, if adapted.
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }

    fn retyped<C: Backend>(&self) -> LayerName<C> {
        LayerName { name: self.name.clone(), slot: self.slot, backend: PhantomData }
    }
}

impl<B: Backend> Module<B> for LayerName<B> {
    type Record = EmptyRecord;

    fn visit<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        visitor.enter_module(&self.name, PEFT_LINEAR);
        visitor.exit_module(&self.name, PEFT_LINEAR);
    }

    fn map<M: ModuleMapper<B>>(self, mapper: &mut M) -> Self {
        mapper.enter_module(&self.name, PEFT_LINEAR);
        mapper.exit_module(&self.name, PEFT_LINEAR);
        self
    }

    fn load_record(self, _record: EmptyRecord) -> Self {
        self
    }

    fn into_record(self) -> EmptyRecord {
        EmptyRecord::new()
    }

    fn to_device(self, _device: &B::Device) -> Self {
        self
    }

    fn fork(self, _device: &B::Device) -> Self {
        self
    }

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        devices
    }
}

impl<B: AutodiffBackend> AutodiffModule<B> for LayerName<B> {
    type InnerModule = LayerName<B::InnerBackend>;

    fn valid(&self) -> Self::InnerModule {
        self.retyped()
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        module.retyped()
    }
}

impl<B: Backend> ModuleDisplayDefault for LayerName<B> {
    fn content(&self, content: Content) -> Option<Content> {
        content.add_single(&self.name).optional()
    }
}

impl<B: Backend> ModuleDisplay for LayerName<B> {}
