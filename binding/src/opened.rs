//! `EntryHandle`: an entry opened for reads of its parts
//! (`cache_core::OpenedEntry`), as JS sees it. Reads come back as
//! ArrayBuffers of exactly the bytes asked for.

use std::sync::Arc;

use napi::bindgen_prelude::*;

use cache_core::{Filling, Notes, OpenedEntry};

use crate::calls::{inline, spawn};
use crate::errors::{Failure, Outcome};
use crate::memory::{self, ArrayMemory, JsThreadAlloc};
use crate::values::{notes_of, MemberValue, Note, ResultForm};

/// An opened entry, or the miss (`found` false) an open found.
#[napi]
pub struct EntryHandle {
    opened: Option<Arc<OpenedEntry>>,
    notes: Option<Vec<Note>>,
}

impl EntryHandle {
    pub(crate) fn of(opened: Option<OpenedEntry>, notes: Notes) -> EntryHandle {
        EntryHandle { opened: opened.map(Arc::new), notes: Some(notes_of(notes)) }
    }

    fn opened(&self) -> Outcome<&Arc<OpenedEntry>> {
        self.opened
            .as_ref()
            .ok_or_else(|| Failure::invalid("the entry is closed, or was not found: there is nothing to read"))
    }
}

/// What an opened entry holds: its form, and each array with where its
/// data lies in the entry's body (one array, named `''`, for an entry of one).
#[napi(object, object_from_js = false)]
pub struct EntryLayout {
    pub result: ResultForm,
    pub class: String,
    pub arrays: Vec<MemberValue>,
    /// Bytes of the body (all data, and an archive's headers between).
    pub body_bytes: f64,
}

#[napi]
impl EntryHandle {
    #[napi(getter)]
    pub fn found(&self) -> bool {
        self.opened.is_some()
    }

    /// Lets go of the entry (its file, on a directory); reads in flight finish.
    #[napi]
    pub fn close(&mut self) {
        self.opened = None;
    }

    /// What the open noticed and got past (given once).
    #[napi]
    pub fn take_notes(&mut self) -> Vec<Note> {
        self.notes.take().unwrap_or_default()
    }

    #[napi(catch_unwind)]
    pub fn layout(&self, env: &Env) -> Result<EntryLayout> {
        inline(env, async {
            let o = self.opened()?;
            let arrays = if o.members.is_empty() {
                vec![member(o, 0, "", o.record.class, o.record.result, &o.header)]
            } else {
                (o.members.iter().zip(&o.record.members).enumerate())
                    .map(|(i, (m, form))| member(o, i, &m.name, form.class, form.form, &m.header))
                    .collect()
            };
            Ok::<_, Failure>(EntryLayout {
                result: o.record.result.into(),
                class: o.record.class.name().to_owned(),
                arrays,
                body_bytes: o.body_len() as f64,
            })
        })
    }

    /// Bytes `start..end` of the body, checked, on this thread.
    #[napi(catch_unwind)]
    pub fn read<'env>(&self, env: &'env Env, start: f64, end: f64) -> Result<ArrayBuffer<'env>> {
        let alloc = JsThreadAlloc::new(env);
        let memory = inline(env, async {
            let o = self.opened()?;
            let range = range_of(start, end, o.body_len())?;
            let mut memory = alloc.alloc((range.end - range.start) as usize, Filling::InOrder)?;
            o.read_into(range, memory.as_mut()).await?;
            Ok::<_, Failure>(memory)
        })?;
        memory::buffer_of(env, memory)
    }

    /// `read`, on the cache's runtime.
    #[napi(catch_unwind, ts_return_type = "Promise<ArrayBuffer>")]
    pub fn read_async<'env>(&self, env: &'env Env, start: f64, end: f64) -> Result<PromiseRaw<'env, ReadBytes>> {
        let opened = self.opened.clone();
        let op = async move {
            let o = opened
                .ok_or_else(|| Failure::invalid("the entry is closed, or was not found: there is nothing to read"))?;
            let range = range_of(start, end, o.body_len())?;
            let mut memory: ArrayMemory = memory::own((range.end - range.start) as usize, Filling::InOrder)?;
            o.read_into(range, memory.as_mut()).await?;
            Ok::<_, Failure>(memory)
        };
        spawn(env, op, |_, memory| Ok(ReadBytes(memory)))
    }
}

/// Bytes read on the runtime, an ArrayBuffer once on the JS thread.
pub struct ReadBytes(ArrayMemory);

impl TypeName for ReadBytes {
    fn type_name() -> &'static str {
        "ArrayBuffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for ReadBytes {
    unsafe fn to_napi_value(env: napi::sys::napi_env, value: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(env);
        let buffer = memory::buffer_of(&env, value.0)?;
        // SAFETY: a value made in this call's scope.
        unsafe { ArrayBuffer::to_napi_value(env.raw(), buffer) }
    }
}

fn member(
    o: &OpenedEntry,
    i: usize,
    name: &str,
    class: cache_core::ArrayClass,
    form: cache_core::ResultForm,
    header: &npy_format::Header,
) -> MemberValue {
    MemberValue {
        name: name.to_owned(),
        class: class.name().to_owned(),
        result: form.into(),
        offset: o.member_range(i).start as f64,
        shape: header.shape.iter().map(|&d| d as f64).collect(),
        dtype: header.dtype.descr(),
        fortran_order: header.fortran_order,
    }
}

/// Byte offsets from JS: whole, in order, within the `len` bytes of the
/// body (the TS layer has checked them; memory is asked for only after).
fn range_of(start: f64, end: f64, len: u64) -> Outcome<std::ops::Range<u64>> {
    let whole = |x: f64| x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= len as f64;
    if !whole(start) || !whole(end) || end < start {
        return Err(Failure::invalid(format!("bytes {start}..{end} are not a range of the entry's {len} bytes")));
    }
    Ok(start as u64..end as u64)
}
