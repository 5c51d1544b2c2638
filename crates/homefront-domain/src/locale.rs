//! The languages Homefront speaks.

use crate::text_enum;

text_enum! {
    /// A user's (or a group bot's) language, as a BCP 47 tag.
    Locale {
        /// Simplified Chinese, the default.
        ZhCn => "zh-CN",
        /// English.
        En => "en",
    }
}
