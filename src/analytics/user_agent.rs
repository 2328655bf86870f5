//! Which kind of device a viewer watches on, from its `User-Agent`.

use serde::Serialize;

/// A coarse device class: enough to tell headsets (the 360 audience) from the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UaClass {
    Browser,
    Headset,
    Mobile,
    Other,
}

impl UaClass {
    pub fn as_str(self) -> &'static str {
        match self {
            UaClass::Browser => "browser",
            UaClass::Headset => "headset",
            UaClass::Mobile => "mobile",
            UaClass::Other => "other",
        }
    }

    pub fn parse(s: &str) -> UaClass {
        match s {
            "browser" => UaClass::Browser,
            "headset" => UaClass::Headset,
            "mobile" => UaClass::Mobile,
            _ => UaClass::Other,
        }
    }

    /// Headsets first (their browsers also say "Mobile" or "Android"), then phones and
    /// tablets, then desktop browsers; players and tools (ffmpeg, VLC, curl) are other.
    pub fn of(user_agent: &str) -> UaClass {
        const HEADSETS: [&str; 6] = [
            "OculusBrowser",
            "Quest",
            "Pico",
            "VisionOS",
            "Apple Vision",
            "Wolvic",
        ];
        const MOBILE: [&str; 4] = ["Mobile", "Android", "iPhone", "iPad"];
        if HEADSETS.iter().any(|h| user_agent.contains(h)) {
            UaClass::Headset
        } else if MOBILE.iter().any(|m| user_agent.contains(m)) {
            UaClass::Mobile
        } else if user_agent.starts_with("Mozilla/") {
            UaClass::Browser
        } else {
            UaClass::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let quest = "Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) OculusBrowser/33.0 Chrome/126.0 Mobile VR Safari/537.36";
        assert_eq!(UaClass::of(quest), UaClass::Headset);
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
        assert_eq!(UaClass::of(iphone), UaClass::Mobile);
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0 Safari/537.36";
        assert_eq!(UaClass::of(chrome), UaClass::Browser);
        assert_eq!(UaClass::of("Lavf/60.3.100"), UaClass::Other);
        assert_eq!(UaClass::of(""), UaClass::Other);
    }
}
