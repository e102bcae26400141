//! The model catalog: the names a key may be scoped to and a workspace may be granted.
//! The built-in list holds well-known Model Studio names and the demo models; upstream
//! configuration adds more. A model may carry the platform default of its limits
//! (`[[model_limits]]` in the settings), which ListModelLimits shows as `modelLimit`.

use crate::limits::LimitValues;

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    pub name: String,
    pub display_name: String,
    /// Served by the built-in demo upstream, not by a real provider.
    pub demo: bool,
    /// The platform default of its limits, which a workspace without its own is counted
    /// against; `None`: no default.
    pub default_limit: Option<LimitValues>,
}

/// Demo models served by the built-in demo upstream.
pub const DEMO_MODELS: [&str; 2] = ["demo-echo", "demo-embed"];

/// Well-known Model Studio names, in the catalog so that keys and grants can name them
/// before an upstream is configured.
pub const WELL_KNOWN_MODELS: [(&str, &str); 10] = [
    ("qwen-plus", "Qwen-Plus"),
    ("qwen-max", "Qwen-Max"),
    ("qwen-turbo", "Qwen-Turbo"),
    ("qwen-flash", "Qwen-Flash"),
    ("qwen3-max", "Qwen3-Max"),
    ("qwen3-coder-plus", "Qwen3-Coder-Plus"),
    ("qwen-vl-plus", "Qwen-VL-Plus"),
    ("text-embedding-v3", "Text Embedding v3"),
    ("text-embedding-v4", "Text Embedding v4"),
    ("deepseek-v3", "DeepSeek-V3"),
];

/// The set of model names a deployment knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelCatalog {
    models: Vec<CatalogModel>,
}

impl ModelCatalog {
    /// The well-known names, plus the demo models when `with_demo`.
    pub fn built_in(with_demo: bool) -> ModelCatalog {
        let mut catalog = ModelCatalog::default();
        for (name, display_name) in WELL_KNOWN_MODELS {
            catalog.add(name, display_name, false);
        }
        if with_demo {
            catalog.add("demo-echo", "Demo echo (built-in demo upstream)", true);
            catalog.add("demo-embed", "Demo embeddings (built-in demo upstream)", true);
        }
        catalog
    }

    /// Adds a model once; a later duplicate is ignored.
    pub fn add(&mut self, name: &str, display_name: &str, demo: bool) {
        if !self.contains(name) {
            self.models.push(CatalogModel { name: name.to_string(), display_name: display_name.to_string(), demo, default_limit: None });
        }
    }

    /// Sets the platform default of `name`'s limits; false when the catalog has no such model.
    pub fn set_default_limit(&mut self, name: &str, limit: LimitValues) -> bool {
        match self.models.iter_mut().find(|model| model.name == name) {
            Some(model) => {
                model.default_limit = Some(limit);
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.models.iter().any(|model| model.name == name)
    }

    pub fn get(&self, name: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|model| model.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CatalogModel> {
        self.models.iter()
    }
}
