//! The notification outbox's vocabulary: what happened, through which
//! channel it is delivered, and where a delivery stands.

use crate::text_enum;

text_enum! {
    /// What an outbox event announces.
    EventKind {
        /// A new order.
        OrderSubmitted => "order_submitted",
        /// An order changed state.
        OrderState => "order_state",
        /// An order was assigned to a volunteer.
        OrderAssigned => "order_assigned",
        /// An order was confirmed automatically.
        OrderAutoConfirmed => "order_auto_confirmed",
        /// An order moved up to a coordinator queue.
        OrderEscalated => "order_escalated",
        /// A volunteer was offered an order.
        OfferMade => "offer_made",
        /// Another volunteer took an order offered to this one.
        OfferTaken => "offer_taken",
        /// An offer was withdrawn.
        OfferWithdrawn => "offer_withdrawn",
        /// A volunteer's credential is about to expire.
        CredentialExpiring => "credential_expiring",
        /// A delivery failed for good.
        DeliveryFailed => "delivery_failed",
        /// A coordinator's test message to a group bot.
        BotTest => "bot_test",
    }
}

text_enum! {
    /// Where a delivery goes.
    Channel {
        /// The in-app inbox.
        Inbox => "inbox",
        /// A WeCom (企业微信) group bot.
        Wecom => "wecom",
        /// A DingTalk group bot.
        Dingtalk => "dingtalk",
        /// A generic webhook (Standard Webhooks).
        Webhook => "webhook",
        /// A Web Push subscription (RFC 8030).
        Push => "push",
    }
}

text_enum! {
    /// What kind of receiver a group bot is.
    BotKind {
        /// A WeCom (企业微信) group bot.
        Wecom => "wecom",
        /// A DingTalk group bot.
        Dingtalk => "dingtalk",
        /// A generic webhook.
        Webhook => "webhook",
    }
}

impl BotKind {
    /// The channel its deliveries go through.
    pub fn channel(self) -> Channel {
        match self {
            BotKind::Wecom => Channel::Wecom,
            BotKind::Dingtalk => Channel::Dingtalk,
            BotKind::Webhook => Channel::Webhook,
        }
    }
}

text_enum! {
    /// Where a delivery stands.
    DeliveryState {
        /// Not yet delivered; retried until it is, or until it is dead.
        Pending => "pending",
        /// Delivered.
        Delivered => "delivered",
        /// Given up after the last attempt.
        Dead => "dead",
    }
}
