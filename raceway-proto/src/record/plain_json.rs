//! The JSON of plain values written straight into a record's bytes: numbers, booleans,
//! `null`, `Option`s, unit variants and strings with nothing to escape, the values a
//! `track_*` call gives most often. Anything else (floats, strings to escape, sequences,
//! maps, structs) is refused with [`NotPlain`], and the caller hands the value to
//! `serde_json` instead. What this writes is what `serde_json` writes for the same value
//! (`tests/it/record_wire.rs` compares them), except that an integer is kept in binary
//! and written in decimal by the exporter (see `value_json`).

use core::fmt;

use serde::ser::{self, Impossible, Serialize};

use super::Spill;

/// The value is not plain: write it with `serde_json`.
#[derive(Debug)]
pub(super) struct NotPlain;

impl fmt::Display for NotPlain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a plain value")
    }
}

impl ser::StdError for NotPlain {}

impl ser::Error for NotPlain {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotPlain
    }
}

/// True when the text `s` goes into JSON as it is, between quotes (`serde_json` escapes
/// only control characters, `"` and `\`).
pub(super) fn is_plain(s: &[u8]) -> bool {
    s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

pub(super) struct Plain<'a, 'b>(pub(super) &'a mut Spill<'b>);

impl Plain<'_, '_> {
    fn number(self, v: u64, negative: bool) -> Result<(), NotPlain> {
        self.0.push_int(v, negative);
        Ok(())
    }

    fn quoted(self, s: &str) -> Result<(), NotPlain> {
        if !is_plain(s.as_bytes()) {
            return Err(NotPlain);
        }
        self.0.push(b"\"");
        self.0.push(s.as_bytes());
        self.0.push(b"\"");
        Ok(())
    }
}

macro_rules! unsigned {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(self, v: $t) -> Result<(), NotPlain> {
            self.number(u64::from(v), false)
        }
    )*};
}

macro_rules! signed {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(self, v: $t) -> Result<(), NotPlain> {
            self.number(i64::from(v).unsigned_abs(), v < 0)
        }
    )*};
}

impl ser::Serializer for Plain<'_, '_> {
    type Ok = ();
    type Error = NotPlain;
    type SerializeSeq = Impossible<(), NotPlain>;
    type SerializeTuple = Impossible<(), NotPlain>;
    type SerializeTupleStruct = Impossible<(), NotPlain>;
    type SerializeTupleVariant = Impossible<(), NotPlain>;
    type SerializeMap = Impossible<(), NotPlain>;
    type SerializeStruct = Impossible<(), NotPlain>;
    type SerializeStructVariant = Impossible<(), NotPlain>;

    unsigned!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    signed!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64);

    fn serialize_bool(self, v: bool) -> Result<(), NotPlain> {
        self.0.push(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_char(self, v: char) -> Result<(), NotPlain> {
        self.quoted(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), NotPlain> {
        self.quoted(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_none(self) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotPlain> {
        self.0.push(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), NotPlain> {
        self.quoted(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotPlain> {
        Err(NotPlain)
    }
    fn collect_str<T: ?Sized + fmt::Display>(self, _: &T) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{put_json, Spill};
    use alloc::string::String;
    use alloc::vec::Vec;
    use serde::Serialize;

    fn written<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut inline = [0; super::super::INLINE];
        let mut buf = Spill {
            inline: &mut inline,
            len: 0,
            heap: Vec::new(),
        };
        put_json(&mut buf, v);
        let kept = if buf.heap.is_empty() {
            buf.inline[..buf.len].to_vec()
        } else {
            buf.heap
        };
        super::super::value_json(&kept, &mut [0; 21]).to_vec()
    }

    #[track_caller]
    fn same<T: Serialize + ?Sized>(v: &T) {
        assert_eq!(
            String::from_utf8(written(v)).unwrap(),
            serde_json::to_string(v).unwrap()
        );
    }

    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Meters(u32);
    #[derive(Serialize)]
    enum State {
        Open,
        Held(u8),
    }
    #[derive(Serialize)]
    struct Pair {
        a: i8,
        b: &'static str,
    }

    #[test]
    fn plain_values_are_written_as_serde_json_writes_them_and_others_by_serde_json() {
        same(&0u8);
        same(&u64::MAX);
        same(&i64::MIN);
        same(&i8::MIN);
        same(&-1i32);
        same(&12_345_678i64);
        same(&true);
        same(&false);
        same(&'x');
        same(&'"');
        same(&'\n');
        same("alice.balance");
        same("ünïcödé ✓");
        same("needs \"escaping\"\\");
        same("\u{1}");
        same(&Some(3));
        same(&None::<i32>);
        same(&Some(Some("x")));
        same(&());
        same(&Unit);
        same(&Meters(7));
        same(&State::Open);
        // Not plain: written by serde_json.
        same(&State::Held(1));
        same(&1.5f64);
        same(&f64::NAN);
        same(&u128::MAX);
        same(&i128::MIN);
        same(&[1, 2, 3]);
        same(&(1, "a"));
        same(&Pair { a: -3, b: "q" });
        same(b"bytes".as_slice());
    }
}
