//! `lookout.toml`: the file both binaries read (SPEC §11).
//!
//! The file is another way to write command-line options, nothing more:
//! every key maps onto one flag of the binary that owns its section, and is
//! checked by that flag's own parser. So a value means the same in the file
//! and on the command line, a new flag is one line in a [`Schema`], and a
//! bad value gets the same explanation either way — here with the file,
//! line and column in front.
//!
//! * [`ConfigFile::read`] reads the file; [`locate`] finds it (`--config`,
//!   `$LOOKOUT_CONFIG`, else `DATA_DIR/lookout.toml` when present).
//! * [`ConfigFile::settings`] walks the parsed document against a binary's
//!   [`Schema`]: unknown sections and keys, wrong types and `${VAR}`
//!   interpolation (in strings, for secrets; a missing variable is an error
//!   naming it) are reported at their position. Sections owned by the other
//!   binary are left to it.
//! * [`load`] merges: each setting becomes `--flag value`, checked alone,
//!   then the command line is parsed after the file's flags. An option given
//!   on the command line (or by its environment variable) replaces the
//!   file's value for it — for a repeatable option, all of the file's values.
//! * [`effective`] writes the settings in force back as TOML for
//!   `--print-config`, secrets as `***`.
//!
//! Nothing here knows a particular flag: the binaries' schemas do.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "lookout.toml";
/// Environment variable naming the file when `--config` is absent.
pub const CONFIG_ENV: &str = "LOOKOUT_CONFIG";
/// Every section of the file, whichever binary owns it.
pub const SECTIONS: &[&str] = &["detector", "motion", "objects", "cameras", "retain", "webserver", "outputs", "nats"];
/// Printed instead of a secret.
pub const MASK: &str = "***";

/// How a key's TOML value becomes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string or number: `--flag VALUE`.
    Value,
    /// `true` gives `--flag`; `false` gives nothing.
    Switch,
    /// An array (or one value): `--flag` once per element.
    Repeated,
    /// An array of strings or numbers as one comma-separated value
    /// (`["person", "car"]` → `--flag person,car`).
    Joined,
    /// An array of arrays, each one comma-separated value
    /// (`[[0, 0, 1, 0.1]]` → `--flag 0,0,1,0.1`).
    RepeatedJoined,
    /// A table of names to values: `--flag NAME=VALUE` per entry.
    Pairs,
}

/// One key of the file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// The long flag it stands for, without `--`.
    pub flag: &'static str,
    pub shape: Shape,
    /// Printed as `***` by `--print-config`.
    pub secret: bool,
}

impl Key {
    pub const fn new(name: &'static str, flag: &'static str, shape: Shape) -> Self {
        Self { name, flag, shape, secret: false }
    }

    pub const fn secret(self) -> Self {
        Self { secret: true, ..self }
    }
}

/// `[name]` and its keys.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    pub name: &'static str,
    pub keys: &'static [Key],
    /// Said after "unknown key" when the section has no keys yet.
    pub empty_because: Option<&'static str>,
}

/// `[cameras.ID]` tables: `source` gives `--{flag} ID=SOURCE` (or
/// `--{flag} ID`), every other key `--{key.flag} ID=VALUE`.
#[derive(Debug, Clone, Copy)]
pub struct CameraTables {
    pub flag: &'static str,
    pub keys: &'static [Key],
}

/// The part of the file one binary owns.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// Keys outside any section.
    pub top: &'static [Key],
    pub sections: &'static [Section],
    pub cameras: Option<CameraTables>,
}

impl Schema {
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    fn all_keys(&self) -> impl Iterator<Item = &Key> {
        self.top.iter().chain(self.sections.iter().flat_map(|s| s.keys.iter()))
    }
}

/// What can be wrong with the file, or with the flags merged with it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Something at a place in the file.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At { path: PathBuf, line: usize, column: usize, message: String },
    /// The command line itself (clap's own message and exit code).
    #[error("{0}")]
    Cli(#[from] clap::Error),
}

impl SettingsError {
    /// Prints the error and exits: 2, as for any bad command line.
    pub fn exit(self) -> ! {
        match self {
            Self::Cli(e) => e.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// `--config`, else `$LOOKOUT_CONFIG` (both come as `flag`), else
/// `DATA_DIR/lookout.toml` if it exists.
pub fn locate(flag: Option<&Path>, data_dir: &Path) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_owned());
    }
    let beside = data_dir.join(FILE_NAME);
    beside.is_file().then_some(beside)
}

/// The file's text, kept to report positions in it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

/// One flag a setting of the file stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub flag: &'static str,
    /// `None` for a switch.
    pub value: Option<String>,
    /// Where the value is written.
    pub span: Range<usize>,
    /// `[section] key`, for messages.
    pub place: String,
    /// Never repeated in a message.
    pub secret: bool,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: path.into(), source })?;
        Ok(Self::from_text(path, text))
    }

    pub fn from_text(path: &Path, text: String) -> Self {
        Self { path: path.to_owned(), text }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error at byte `offset` of the file.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> SettingsError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SettingsError::At { path: self.path.clone(), line, column, message: message.into() }
    }

    /// The flags this binary's part of the file stands for, in file order
    /// within each section.
    pub fn settings(&self, schema: &Schema) -> Result<Vec<Setting>, SettingsError> {
        let document = DeTable::parse(&self.text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            self.error_at(offset, e.message().trim_end().to_owned())
        })?;
        let mut out = Vec::new();
        for (key, value) in document.get_ref() {
            let name = key.get_ref().as_ref();
            if let Some(top) = schema.top.iter().find(|k| k.name == name) {
                self.push(&mut out, top, value, name.to_owned(), None)?;
                continue;
            }
            if !SECTIONS.contains(&name) {
                let known: Vec<&str> = schema.top.iter().map(|k| k.name).chain(SECTIONS.iter().copied()).collect();
                return Err(self.error_at(
                    key.span().start,
                    format!("unknown key `{name}`; expected one of: {}", known.join(", ")),
                ));
            }
            let table = self.table(value, &format!("[{name}]"))?;
            if name == "cameras" {
                if let Some(cameras) = &schema.cameras {
                    self.cameras(&mut out, cameras, table)?;
                }
                continue;
            }
            let Some(section) = schema.section(name) else { continue };
            for (key, value) in table {
                let key_name = key.get_ref().as_ref();
                let place = format!("[{name}] {key_name}");
                let Some(known) = section.keys.iter().find(|k| k.name == key_name) else {
                    let expected = match section.empty_because {
                        Some(why) => why.to_owned(),
                        None => format!("expected one of: {}", names(section.keys)),
                    };
                    return Err(
                        self.error_at(key.span().start, format!("unknown key `{key_name}` in [{name}]; {expected}"))
                    );
                };
                self.push(&mut out, known, value, place, None)?;
            }
        }
        Ok(out)
    }

    fn cameras(&self, out: &mut Vec<Setting>, schema: &CameraTables, cameras: &DeTable) -> Result<(), SettingsError> {
        for (id, camera) in cameras {
            let id_text = id.get_ref().as_ref();
            let table = self.table(camera, &format!("[cameras.{id_text}]"))?;
            let source = table.iter().find(|(k, _)| k.get_ref().as_ref() == "source");
            let (value, span) = match source {
                Some((_, value)) => {
                    let text = self.scalar(value, &format!("[cameras.{id_text}] source"))?;
                    (format!("{id_text}={text}"), value.span())
                }
                None => (id_text.to_owned(), id.span()),
            };
            let place = format!("[cameras.{id_text}]");
            out.push(Setting { flag: schema.flag, value: Some(value), span, place, secret: false });
            for (key, value) in table.iter().filter(|(k, _)| k.get_ref().as_ref() != "source") {
                let key_name = key.get_ref().as_ref();
                let Some(known) = schema.keys.iter().find(|k| k.name == key_name) else {
                    return Err(self.error_at(
                        key.span().start,
                        format!(
                            "unknown key `{key_name}` in [cameras.{id_text}]; expected one of: source, {}",
                            names(schema.keys)
                        ),
                    ));
                };
                self.push(out, known, value, format!("[cameras.{id_text}] {key_name}"), Some(id_text))?;
            }
        }
        Ok(())
    }

    /// The flags of one key; `camera` prefixes each value with `ID=`.
    fn push(
        &self,
        out: &mut Vec<Setting>,
        key: &Key,
        value: &toml::Spanned<DeValue>,
        place: String,
        camera: Option<&str>,
    ) -> Result<(), SettingsError> {
        let prefixed = |text: String| match camera {
            Some(id) => format!("{id}={text}"),
            None => text,
        };
        let mut add = |value: Option<String>, span: Range<usize>| {
            out.push(Setting { flag: key.flag, value, span, place: place.clone(), secret: key.secret });
        };
        match key.shape {
            Shape::Value => add(Some(prefixed(self.scalar(value, &place)?)), value.span()),
            Shape::Joined => add(Some(prefixed(self.joined(value, &place)?)), value.span()),
            Shape::Switch => match value.get_ref() {
                DeValue::Boolean(true) => add(None, value.span()),
                DeValue::Boolean(false) => {}
                other => return Err(self.wrong_type(value, &place, "true or false", other)),
            },
            Shape::Repeated | Shape::RepeatedJoined => {
                let one = std::slice::from_ref(value);
                let items = match value.get_ref() {
                    DeValue::Array(items) => &items[..],
                    _ => one,
                };
                for item in items {
                    let text = if key.shape == Shape::Repeated {
                        self.scalar(item, &place)?
                    } else {
                        self.joined(item, &place)?
                    };
                    add(Some(prefixed(text)), item.span());
                }
            }
            Shape::Pairs => {
                for (name, item) in self.table(value, &place)? {
                    let text = self.scalar(item, &place)?;
                    add(Some(prefixed(format!("{}={text}", name.get_ref()))), item.span());
                }
            }
        }
        Ok(())
    }

    fn table<'a, 'i>(
        &self,
        value: &'a toml::Spanned<DeValue<'i>>,
        place: &str,
    ) -> Result<&'a DeTable<'i>, SettingsError> {
        match value.get_ref() {
            DeValue::Table(table) => Ok(table),
            other => Err(self.wrong_type(value, place, "a table", other)),
        }
    }

    /// A string (interpolated) or a number, as text.
    fn scalar(&self, value: &toml::Spanned<DeValue>, place: &str) -> Result<String, SettingsError> {
        match value.get_ref() {
            DeValue::String(text) => self.interpolate(text, value.span().start, place),
            DeValue::Integer(n) => {
                let digits = n.as_str().replace('_', "");
                i128::from_str_radix(&digits, n.radix())
                    .map(|n| n.to_string())
                    .map_err(|_| self.error_at(value.span().start, format!("{place}: {digits:?} is not a number")))
            }
            DeValue::Float(f) => Ok(f.as_str().replace('_', "")),
            other => Err(self.wrong_type(value, place, "a string or a number", other)),
        }
    }

    /// An array of strings or numbers (or one), comma-joined.
    fn joined(&self, value: &toml::Spanned<DeValue>, place: &str) -> Result<String, SettingsError> {
        match value.get_ref() {
            DeValue::Array(items) => {
                let parts: Result<Vec<String>, _> = items.iter().map(|item| self.scalar(item, place)).collect();
                Ok(parts?.join(","))
            }
            _ => self.scalar(value, place),
        }
    }

    fn wrong_type(&self, at: &toml::Spanned<DeValue>, place: &str, expected: &str, found: &DeValue) -> SettingsError {
        self.error_at(at.span().start, format!("{place}: expected {expected}, found {}", found.type_str()))
    }

    /// `${NAME}` → the variable's value; `$$` → `$`. Anything else after a
    /// `$` is an error, so a typo cannot pass as a literal.
    fn interpolate(&self, text: &str, offset: usize, place: &str) -> Result<String, SettingsError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let name = rest
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .map(|(name, _)| name)
                .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            let Some(name) = name else {
                return Err(self.error_at(offset, format!("{place}: write ${{NAME}} for a variable, or $$ for a '$'")));
            };
            match std::env::var(name) {
                Ok(value) => out.push_str(&value),
                Err(_) => {
                    return Err(self.error_at(offset, format!("{place}: environment variable {name} is not set")));
                }
            }
            rest = &rest[name.len() + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn names(keys: &[Key]) -> String {
    keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The arguments of a binary and where its settings came from.
#[derive(Debug)]
pub struct Loaded<A> {
    pub args: A,
    /// The final parse, for [`effective`].
    pub matches: ArgMatches,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// Parses `argv` with the settings of the config file merged in. The
/// command needs a `config` (`--config`) and a `data_dir` argument to find
/// the file. `required` makes a missing file an error even when it was only
/// found in the data directory (a reload must not run without it).
pub fn load<A: clap::Parser>(
    argv: &[OsString],
    schema: &Schema,
    required: Option<&Path>,
) -> Result<Loaded<A>, SettingsError> {
    let command = A::command();
    let first = command.clone().try_get_matches_from(argv).map_err(|e| without_secrets(e, schema))?;
    // `try_get_one`: a command without these arguments reads no file
    // rather than panicking.
    let path_of = |id: &str| first.try_get_one::<PathBuf>(id).ok().flatten().cloned();
    let data_dir = path_of("data_dir").unwrap_or_default();
    let path = required.map(Path::to_owned).or_else(|| locate(path_of("config").as_deref(), &data_dir));
    let mut merged: Vec<OsString> = argv.iter().take(1).cloned().collect();
    if let Some(path) = &path {
        let file = ConfigFile::read(path)?;
        for setting in file.settings(schema)? {
            let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(setting.flag)) else {
                return Err(
                    file.error_at(setting.span.start, format!("{}: not a setting of this program", setting.place))
                );
            };
            if matches!(
                first.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            let mut alone: Vec<OsString> =
                vec![argv.first().cloned().unwrap_or_default(), format!("--{}", setting.flag).into()];
            alone.extend(setting.value.iter().map(OsString::from));
            if let Err(e) = command.clone().try_get_matches_from(&alone) {
                let reason = clap_reason(&e, setting.secret);
                return Err(file.error_at(setting.span.start, format!("{}: {reason}", setting.place)));
            }
            merged.extend(alone.into_iter().skip(1));
        }
    }
    merged.extend(argv.iter().skip(1).cloned());
    let matches = command.try_get_matches_from(&merged).map_err(|e| without_secrets(e, schema))?;
    let args = A::from_arg_matches(&matches)?;
    Ok(Loaded { args, matches, file: path })
}

/// A command-line error that quotes a bad value, with the value left out
/// when its flag is a secret, and its credentials masked otherwise: clap
/// would print `--mqtt mqtt://user:password@…` back to the terminal and
/// the journal.
fn without_secrets(error: clap::Error, schema: &Schema) -> SettingsError {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) else { return error.into() };
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => String::new(),
    };
    let secret = schema.all_keys().any(|k| k.secret && arg.starts_with(&format!("--{} ", k.flag)));
    if !secret && crate::redact::redact(value) == value.as_str() {
        return error.into();
    }
    let why = std::error::Error::source(&error).map(|why| why.to_string()).unwrap_or_else(|| "is not valid".into());
    let shown = if secret { String::new() } else { format!(" {:?}", crate::redact::redact(value)) };
    let message = format!("invalid value{shown} for '{arg}': {why}\n");
    SettingsError::Cli(clap::Error::raw(clap::error::ErrorKind::InvalidValue, message))
}

/// A clap error without its "error: " and usage lines, and without a
/// password in the value it quotes (or the value at all when `secret`).
fn clap_reason(error: &clap::Error, secret: bool) -> String {
    use std::error::Error as _;
    let value = error.get(clap::error::ContextKind::InvalidValue).map(|v| v.to_string());
    match (value, error.source()) {
        (Some(_), Some(why)) if secret => format!("invalid value: {why}"),
        (Some(value), Some(why)) => format!("invalid value {:?}: {why}", crate::redact::redact(&value)),
        _ => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

/// The settings in force, as a file in `schema`'s shape: the values from
/// the command line, the file, the environment and the defaults alike.
/// Secrets are `***`, passwords in URLs masked.
pub fn effective(matches: &ArgMatches, command: &Command, schema: &Schema) -> String {
    let raw = |flag: &str| -> Vec<String> {
        let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(flag)) else { return Vec::new() };
        matches
            .get_raw(arg.get_id().as_str())
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let mut root = toml::Table::new();
    let mut camera_ids: Vec<String> = Vec::new();
    if let Some(cameras) = &schema.cameras {
        let mut tables = toml::Table::new();
        for value in raw(cameras.flag) {
            let (id, source) = match value.split_once('=') {
                Some((id, source)) => (id.to_owned(), Some(source.to_owned())),
                None => (value.clone(), None),
            };
            let mut table = toml::Table::new();
            if let Some(source) = source {
                table.insert("source".into(), toml::Value::String(crate::redact::redact(&source).into_owned()));
            }
            camera_ids.push(id.clone());
            tables.insert(id, toml::Value::Table(table));
        }
        for key in cameras.keys {
            for value in raw(key.flag) {
                let Some((id, text)) = value.split_once('=') else { continue };
                if let Some(toml::Value::Table(table)) = tables.get_mut(id) {
                    add_value(table, key, text.to_owned());
                }
            }
        }
        root.insert("cameras".into(), toml::Value::Table(tables));
    }
    let for_all = |key: &Key, value: &str| -> bool {
        // A per-camera flag shared with a section (`--objects ID=…`) belongs
        // to that camera's table.
        !value.split_once('=').is_some_and(|(id, _)| key.shape != Shape::Pairs && camera_ids.iter().any(|c| c == id))
    };
    for key in schema.top {
        for value in raw(key.flag) {
            add_value(&mut root, key, value);
        }
    }
    for section in schema.sections {
        let mut table = toml::Table::new();
        for key in section.keys {
            for value in raw(key.flag).into_iter().filter(|v| for_all(key, v)) {
                add_value(&mut table, key, value);
            }
        }
        root.insert(section.name.into(), toml::Value::Table(table));
    }
    let mut out = String::new();
    let _ = writeln!(out, "# The settings in force (command line, file, environment, defaults); secrets as {MASK}.");
    out + &toml::to_string(&root).unwrap_or_default()
}

/// Adds one flag's raw value to `table` under `key` in the key's shape.
fn add_value(table: &mut toml::Table, key: &Key, value: String) {
    let value = if key.secret { MASK.to_owned() } else { crate::redact::redact(&value).into_owned() };
    let typed = |text: &str| -> toml::Value {
        if let Ok(n) = text.parse::<i64>() {
            toml::Value::Integer(n)
        } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
            toml::Value::Float(f)
        } else {
            toml::Value::String(text.to_owned())
        }
    };
    let list = |text: &str| toml::Value::Array(text.split(',').map(|part| typed(part.trim())).collect());
    let slot = |table: &mut toml::Table| -> Vec<toml::Value> {
        match table.remove(key.name) {
            Some(toml::Value::Array(items)) => items,
            _ => Vec::new(),
        }
    };
    match key.shape {
        Shape::Value => {
            table.insert(key.name.into(), typed(&value));
        }
        Shape::Joined => {
            // A flag with a value delimiter hands over its parts one by one.
            let mut items = slot(table);
            if let toml::Value::Array(parts) = list(&value) {
                items.extend(parts);
            }
            table.insert(key.name.into(), toml::Value::Array(items));
        }
        Shape::Switch => {
            table.insert(key.name.into(), toml::Value::Boolean(value == "true"));
        }
        Shape::Repeated | Shape::RepeatedJoined => {
            let mut items = slot(table);
            items.push(if key.shape == Shape::Repeated { typed(&value) } else { list(&value) });
            table.insert(key.name.into(), toml::Value::Array(items));
        }
        Shape::Pairs => {
            let Some((name, text)) = value.split_once('=') else { return };
            let entry = table.entry(key.name).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(pairs) = entry {
                pairs.insert(name.to_owned(), typed(text));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in program with one flag of each shape.
    #[derive(Debug, clap::Parser)]
    struct Demo {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 5.0, value_parser = fps)]
        fps: f64,
        #[arg(long)]
        fast: bool,
        #[arg(long = "host")]
        hosts: Vec<String>,
        #[arg(long = "camera")]
        cameras: Vec<String>,
        #[arg(long = "label")]
        labels: Vec<String>,
        #[arg(long = "mask")]
        masks: Vec<String>,
        #[arg(long = "keep")]
        keep: Vec<String>,
        #[arg(long)]
        token: Option<String>,
    }

    fn fps(text: &str) -> Result<f64, String> {
        match text.parse::<f64>() {
            Ok(v) if (0.2..=30.0).contains(&v) => Ok(v),
            Ok(_) => Err("must be between 0.2 and 30".into()),
            Err(_) => Err(format!("{text:?} is not a number")),
        }
    }

    const SCHEMA: Schema = Schema {
        top: &[Key::new("data_dir", "data-dir", Shape::Value)],
        sections: &[
            Section {
                name: "detector",
                keys: &[
                    Key::new("fps", "fps", Shape::Value),
                    Key::new("fast", "fast", Shape::Switch),
                    Key::new("hosts", "host", Shape::Repeated),
                    Key::new("token", "token", Shape::Value).secret(),
                ],
                empty_because: None,
            },
            Section { name: "retain", keys: &[Key::new("cameras", "keep", Shape::Pairs)], empty_because: None },
            Section { name: "outputs", keys: &[], empty_because: Some("no outputs yet") },
        ],
        cameras: Some(CameraTables {
            flag: "camera",
            keys: &[Key::new("labels", "label", Shape::Joined), Key::new("masks", "mask", Shape::RepeatedJoined)],
        }),
    };

    fn load_text(text: &str, argv: &[&str]) -> Result<Loaded<Demo>, SettingsError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).expect("write");
        let mut full = vec!["demo".to_owned(), "--config".to_owned(), path.display().to_string()];
        full.extend(argv.iter().map(|s| (*s).to_owned()));
        let argv: Vec<OsString> = full.into_iter().map(OsString::from).collect();
        load::<Demo>(&argv, &SCHEMA, None)
    }

    fn position(error: SettingsError) -> (usize, usize, String) {
        match error {
            SettingsError::At { line, column, message, .. } => (line, column, message),
            other => panic!("expected a positioned error, got {other}"),
        }
    }

    const FULL: &str = r#"
data_dir = "/srv/lookout"
[detector]
fps = 2.5
fast = true
hosts = ["a.example", "b.example"]
token = "t-${CARGO_PKG_NAME}"
[cameras.door]
source = "rtsp://user:${CARGO_PKG_NAME}@cam/1"
labels = ["person", "car"]
masks = [[0, 0, 1, 0.1], [0.5, 0.5, 0.25, 0.25]]
[cameras.yard]
[retain]
cameras = { door = 90, yard = 0.5 }
[webserver]
anything = "is the other binary's"
"#;

    #[test]
    fn every_shape_becomes_its_flags_and_secrets_are_interpolated() {
        // The crate forbids `unsafe`, so no `set_var`: a variable cargo
        // sets for every test stands for a secret.
        let secret = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
        let loaded = load_text(FULL, &[]).expect("loads");
        let a = &loaded.args;
        assert_eq!(a.data_dir, PathBuf::from("/srv/lookout"));
        assert_eq!((a.fps, a.fast), (2.5, true));
        assert_eq!(a.hosts, ["a.example", "b.example"]);
        assert_eq!(a.token, Some(format!("t-{secret}")));
        assert_eq!(a.cameras, [format!("door=rtsp://user:{secret}@cam/1"), "yard".to_owned()]);
        assert_eq!(a.labels, ["door=person,car"]);
        assert_eq!(a.masks, ["door=0,0,1,0.1", "door=0.5,0.5,0.25,0.25"]);
        assert_eq!(a.keep, ["door=90", "yard=0.5"]);

        let printed = effective(&loaded.matches, &<Demo as clap::CommandFactory>::command(), &SCHEMA);
        assert!(!printed.contains(&secret), "{printed}");
        assert!(printed.contains("token = \"***\""), "{printed}");
        // What it prints is itself a valid file with the same settings
        // (secrets aside).
        let reread = load_text(&printed.replace(MASK, "x"), &[]).expect("the printout loads");
        assert_eq!((reread.args.fps, &reread.args.labels, &reread.args.masks), (2.5, &a.labels, &a.masks));
        assert_eq!(reread.args.keep, a.keep);
    }

    #[test]
    fn the_command_line_replaces_what_the_file_says() {
        let text = "[detector]\nfps = 2.5\nhosts = [\"a.example\"]\n[cameras.door]\nsource = \"x.mp4\"\n";
        let loaded = load_text(text, &["--fps", "10", "--host", "c.example"]).expect("loads");
        assert_eq!(loaded.args.fps, 10.0);
        assert_eq!(loaded.args.hosts, ["c.example"], "a repeatable flag replaces all of the file's values");
        assert_eq!(loaded.args.cameras, ["door=x.mp4"]);
        let loaded = load_text(text, &["--camera", "yard=y.mp4"]).expect("loads");
        assert_eq!(loaded.args.cameras, ["yard=y.mp4"]);
    }

    #[test]
    fn every_error_class_names_the_line_and_column() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            ("[detector]\nfps = = 3\n", (2, 7), "extra `=`"),
            ("[detector]\nfsp = 3\n", (2, 1), "unknown key `fsp` in [detector]; expected one of: fps, fast"),
            ("colour = 1\n", (1, 1), "unknown key `colour`"),
            ("[detector]\nfps = [1]\n", (2, 7), "expected a string or a number, found array"),
            ("[detector]\nfast = \"yes\"\n", (2, 8), "expected true or false, found string"),
            ("[detector]\nfps = 100\n", (2, 7), "[detector] fps: invalid value \"100\": must be between 0.2 and 30"),
            ("[detector]\n\n  fps = \"fast\"\n", (3, 9), "\"fast\" is not a number"),
            ("[cameras.door]\ncolour = 1\n", (2, 1), "unknown key `colour` in [cameras.door]"),
            ("[cameras]\ndoor = 1\n", (2, 8), "expected a table, found integer"),
            ("[outputs]\nmqtt = \"x\"\n", (2, 1), "no outputs yet"),
            (
                "[detector]\ntoken = \"${LOOKOUT_SURELY_UNSET}\"\n",
                (2, 9),
                "environment variable LOOKOUT_SURELY_UNSET is not set",
            ),
            ("[detector]\ntoken = \"a$b\"\n", (2, 9), "write ${NAME}"),
        ];
        for (text, (line, column), needle) in cases {
            let error = load_text(text, &[]).expect_err(text);
            let (l, c, message) = position(error);
            assert!(message.contains(needle), "{text:?}: {message}");
            assert_eq!((l, c), (*line, *column), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_data_directory_file_is_found_and_a_named_one_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(locate(None, dir.path()), None);
        std::fs::write(dir.path().join(FILE_NAME), "[detector]\nfps = 3\n").expect("write");
        let argv: Vec<OsString> =
            ["demo", "--data-dir"].iter().map(OsString::from).chain([dir.path().into()]).collect();
        let loaded = load::<Demo>(&argv, &SCHEMA, None).expect("loads");
        assert_eq!((loaded.args.fps, loaded.file), (3.0, Some(dir.path().join(FILE_NAME))));
        let missing = dir.path().join("nope.toml");
        let error = load::<Demo>(&argv, &SCHEMA, Some(&missing)).expect_err("missing");
        assert!(matches!(error, SettingsError::Read { .. }), "{error}");
        let escaped = ConfigFile::from_text(Path::new("x"), String::new()).interpolate("a$$b", 0, "k").expect("ok");
        assert_eq!(escaped, "a$b");
    }
}
