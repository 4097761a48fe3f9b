//! Value parsers for numeric flags, so a bad value is refused when the command line is read,
//! with the flag's name, instead of training on it.

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim().parse().map_err(|_| format!("`{text}` is not a number"))
}

/// A whole number of at least 1.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    number(text).and_then(|n: usize| if n >= 1 { Ok(n) } else { Err("must be at least 1".into()) })
}

/// A finite number above 0 (a learning rate, α).
pub fn positive(text: &str) -> Result<f64, String> {
    number(text).and_then(|x: f64| if x.is_finite() && x > 0.0 { Ok(x) } else { Err(format!("must be a positive number, got {x}")) })
}

/// A finite number of at least 0 (a weight decay, a temperature).
pub fn non_negative(text: &str) -> Result<f64, String> {
    number(text).and_then(|x: f64| if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(format!("must be 0 or more, got {x}")) })
}

/// A rate in [0, 1) (dropout, stochastic depth).
pub fn rate(text: &str) -> Result<f64, String> {
    number(text).and_then(|x: f64| if (0.0..1.0).contains(&x) { Ok(x) } else { Err(format!("must be in [0, 1), got {x}")) })
}

/// A share in (0, 1] (top-p).
pub fn share(text: &str) -> Result<f64, String> {
    number(text).and_then(|x: f64| if x > 0.0 && x <= 1.0 { Ok(x) } else { Err(format!("must be in (0, 1], got {x}")) })
}

/// Text that is not empty (a stop string: the empty one is in every text).
pub fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() { Err("must not be empty".into()) } else { Ok(text.to_string()) }
}

/// A path that is valid UTF-8 (clap refuses any other before calling this): a run writes its
/// paths into `config.json`, which cannot hold any other.
pub fn utf8_path(text: &str) -> Result<std::path::PathBuf, String> {
    Ok(text.into())
}
